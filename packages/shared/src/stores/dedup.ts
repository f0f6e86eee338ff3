import type { Redis } from 'ioredis';
import { sha256Hex } from '../infra/ids.ts';
import { runScript } from '../infra/scripts.ts';

/** What makes two jobs the same work: tenant, original bytes and options (in any order). */
export function fingerprintOf(tenantId: string, originalSha256: string, options: Record<string, string> = {}): string {
  const canonical = JSON.stringify(Object.entries(options).sort(([a], [b]) => (a < b ? -1 : 1)));
  return sha256Hex(`${tenantId}\n${originalSha256}\n${canonical}`);
}

/** The Redis key holding `running:<job>` or `done:<job>` for one fingerprint. */
export const dedupKey = (prefix: string, fingerprint: string): string => `${prefix}:dedup:${fingerprint}`;

/**
 * Drops a finished result from reuse (a reviewer rejected it), so the next identical image
 * goes to ByByBG; a claim still running is left alone.
 */
export async function forgetReusableResult(redis: Redis, prefix: string, fingerprint: string): Promise<void> {
  await runScript(
    redis,
    `if string.sub(redis.call('GET', KEYS[1]) or '', 1, 5) == 'done:' then return redis.call('DEL', KEYS[1]) end return 0`,
    1,
    dedupKey(prefix, fingerprint),
  );
}

/**
 * One ByByBG call per distinct image: the same bytes with the same options from the same
 * tenant reuse the stored result. A claim is `running:<job>` while the first job calls
 * ByByBG, then `done:<job>` for the retention window.
 */
type Claim = { kind: 'leader' } | { kind: 'done'; jobId: string } | { kind: 'wait'; jobId: string };

export interface Dedup {
  claim(fingerprint: string, jobId: string): Promise<Claim>;
  succeeded(fingerprint: string, jobId: string): Promise<void>;
  /** The leader gave up (for now): let the next duplicate call ByByBG itself. */
  release(fingerprint: string, jobId: string): Promise<void>;
}

const CLAIM = `
local value = redis.call('GET', KEYS[1])
if not value or value == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'leader', ''}
end
local sep = string.find(value, ':')
return {string.sub(value, 1, sep - 1), string.sub(value, sep + 1)}
`;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export function makeDedup({
  redis,
  prefix,
  runningTtlMs,
  retentionMs,
}: {
  redis: Redis;
  prefix: string;
  runningTtlMs: number;
  retentionMs: number;
}): Dedup {
  const key = (fingerprint: string) => dedupKey(prefix, fingerprint);
  return {
    async claim(fingerprint, jobId) {
      const [kind, holder] = (await runScript(
        redis,
        CLAIM,
        1,
        key(fingerprint),
        `running:${jobId}`,
        String(runningTtlMs),
      )) as [string, string];
      if (kind === 'leader') return { kind: 'leader' };
      if (kind === 'done' && holder !== jobId) return { kind: 'done', jobId: holder };
      if (kind === 'done') return { kind: 'leader' };
      return { kind: 'wait', jobId: holder };
    },
    async succeeded(fingerprint, jobId) {
      await redis.set(key(fingerprint), `done:${jobId}`, 'PX', retentionMs);
    },
    async release(fingerprint, jobId) {
      await runScript(redis, RELEASE, 1, key(fingerprint), `running:${jobId}`);
    },
  };
}
