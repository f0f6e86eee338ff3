import { runScript } from './scripts.ts';
import type { Redis } from 'ioredis';
import { sha256Hex } from './ids.ts';

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
  await runScript(redis, `if string.sub(redis.call('GET', KEYS[1]) or '', 1, 5) == 'done:' then return redis.call('DEL', KEYS[1]) end return 0`, 1, dedupKey(prefix, fingerprint));
}
