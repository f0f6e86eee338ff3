import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

type ScriptArg = string | number | Buffer;

const digests = new Map<string, string>();
const digestOf = (lua: string): string => {
  let digest = digests.get(lua);
  if (!digest) {
    digest = createHash('sha1').update(lua).digest('hex');
    digests.set(lua, digest);
  }
  return digest;
};

/**
 * Runs a Lua script by its digest (EVALSHA): 40 bytes on the wire instead of the script,
 * and no hashing of it by Redis on every call. A Redis that does not know the script yet
 * (first call, a restart, another Cluster node) answers NOSCRIPT, and the script is sent
 * whole once with EVAL, which also loads it. For constant scripts only: the digests are kept.
 */
export async function runScript(
  redis: Redis,
  lua: string,
  numberOfKeys: number,
  ...args: ScriptArg[]
): Promise<unknown> {
  try {
    return await redis.evalsha(digestOf(lua), numberOfKeys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(lua, numberOfKeys, ...args);
  }
}
