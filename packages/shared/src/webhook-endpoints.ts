import { sha256Hex } from './ids.ts';
import type { Redis } from './redis.ts';

/**
 * Endpoints that answered `410 Gone`: the receiver asked us to stop, so later events of
 * the tenant to that URL are not sent until the tenant redelivers one (which re-enables
 * the URL) or the mark expires.
 */
export interface GoneEndpoints {
  markGone(tenantId: string, url: string): Promise<void>;
  /** When the URL answered 410, or null when it may be called. */
  goneSince(tenantId: string, url: string): Promise<string | null>;
  enable(tenantId: string, url: string): Promise<void>;
}

const KEEP_MS = 30 * 86_400_000;

export function makeGoneEndpoints({ redis, prefix }: { redis: Redis; prefix: string }): GoneEndpoints {
  const key = (tenantId: string, url: string) => `${prefix}:webhook-gone:${tenantId}:${sha256Hex(url)}`;
  return {
    async markGone(tenantId, url) {
      await redis.set(key(tenantId, url), new Date().toISOString(), 'PX', KEEP_MS);
    },
    goneSince: (tenantId, url) => redis.get(key(tenantId, url)),
    async enable(tenantId, url) {
      await redis.del(key(tenantId, url));
    },
  };
}
