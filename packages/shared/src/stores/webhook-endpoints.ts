import { sha256Hex } from '../infra/ids.ts';
import type { Redis } from '../infra/redis.ts';

/**
 * Endpoints that answered `410 Gone`: the receiver asked us to stop, so later events of
 * the tenant to that URL are not sent until the tenant enables the URL again
 * (`POST /v1/webhook-endpoints/enable`, or a redelivery to it) or the mark expires.
 * The mark per URL answers the worker's check in one GET; a per-tenant sorted set of the
 * disabled URLs lets the tenant list them.
 */
export interface GoneEndpoints {
  markGone(tenantId: string, url: string): Promise<void>;
  /** When the URL answered 410, or null when it may be called. */
  goneSince(tenantId: string, url: string): Promise<string | null>;
  /** The same question for many URLs at once, in order. */
  goneSinceMany(tenantId: string, urls: readonly string[]): Promise<(string | null)[]>;
  /** Whether the URL was disabled (and is no longer). */
  enable(tenantId: string, url: string): Promise<boolean>;
  /** The tenant's disabled URLs with when they answered 410, most recent first. */
  listGone(tenantId: string): Promise<{ url: string; since: string }[]>;
}

const KEEP_MS = 30 * 86_400_000;

/** The URLs a tenant's deliveries went to, scored by their last attempt (written with the delivery log). */
export const tenantEndpointsKey = (prefix: string, tenantId: string): string =>
  `${prefix}:tenant:${tenantId}:webhook-endpoints`;

export function makeGoneEndpoints({ redis, prefix }: { redis: Redis; prefix: string }): GoneEndpoints {
  const key = (tenantId: string, url: string) => `${prefix}:webhook-gone:${tenantId}:${sha256Hex(url)}`;
  const listKey = (tenantId: string) => `${tenantEndpointsKey(prefix, tenantId)}:gone`;
  return {
    async markGone(tenantId, url) {
      const now = Date.now();
      await redis
        .multi()
        .set(key(tenantId, url), new Date(now).toISOString(), 'PX', KEEP_MS)
        .zadd(listKey(tenantId), now, url)
        .zremrangebyscore(listKey(tenantId), '-inf', now - KEEP_MS)
        .pexpire(listKey(tenantId), KEEP_MS)
        .exec();
    },
    goneSince: (tenantId, url) => redis.get(key(tenantId, url)),
    async goneSinceMany(tenantId, urls) {
      return urls.length === 0 ? [] : redis.mget(...urls.map((url) => key(tenantId, url)));
    },
    async enable(tenantId, url) {
      const [[, removed] = [null, 0]] =
        (await redis.multi().del(key(tenantId, url)).zrem(listKey(tenantId), url).exec()) ?? [];
      return Number(removed) > 0;
    },
    async listGone(tenantId) {
      const flat = await redis.zrevrangebyscore(listKey(tenantId), '+inf', Date.now() - KEEP_MS, 'WITHSCORES');
      const gone: { url: string; since: string }[] = [];
      for (let i = 0; i < flat.length; i += 2)
        gone.push({ url: flat[i]!, since: new Date(Number(flat[i + 1])).toISOString() });
      return gone;
    },
  };
}
