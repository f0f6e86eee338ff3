import { sha256Hex } from './ids.ts';

/** What makes two jobs the same work: tenant, original bytes and options (in any order). */
export function fingerprintOf(tenantId: string, originalSha256: string, options: Record<string, string> = {}): string {
  const canonical = JSON.stringify(Object.entries(options).sort(([a], [b]) => (a < b ? -1 : 1)));
  return sha256Hex(`${tenantId}\n${originalSha256}\n${canonical}`);
}

/** The Redis key holding `running:<job>` or `done:<job>` for one fingerprint. */
export const dedupKey = (prefix: string, fingerprint: string): string => `${prefix}:dedup:${fingerprint}`;
