import type { Redis } from 'ioredis';
import { sha256Hex } from '@cutout/shared';
import { ApiError } from './errors.ts';

/** What a first request answered, replayed to every retry with the same key. */
export interface StoredResponse { fingerprint: string; statusCode: number; location?: string; body: unknown }

export type IdempotencyClaim = { kind: 'new' } | { kind: 'in_progress' } | { kind: 'done'; response: StoredResponse };

export interface Idempotency {
  claim(tenantId: string, key: string): Promise<IdempotencyClaim>;
  complete(tenantId: string, key: string, response: StoredResponse): Promise<void>;
  /** The first request failed: let a retry with the same key run afresh. */
  release(tenantId: string, key: string): Promise<void>;
}

const PENDING = '{"pending":true}';
/** A claim whose request died without answering frees itself after this. */
const PENDING_TTL_MS = 5 * 60_000;

const CLAIM = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return nil end
return redis.call('GET', KEYS[1])
`;

/** A request with the key is still running: the client retries shortly. */
export const requestInProgress = () =>
  new ApiError('idempotency_request_in_progress', 'A request with this Idempotency-Key is still being processed; retry shortly', { 'retry-after': '1' });

/** The key came back with a different request. */
export const keyReused = () => new ApiError('idempotency_key_reused', 'This Idempotency-Key was used with a different request in the last 24 hours');

/** Per tenant, for `ttlMs` (24 h): keys are hashed so no client string becomes part of a Redis key. */
export function makeIdempotency({ redis, prefix, ttlMs }: { redis: Redis; prefix: string; ttlMs: number }): Idempotency {
  const redisKey = (tenantId: string, key: string) => `${prefix}:idempotency:${tenantId}:${sha256Hex(key)}`;
  return {
    async claim(tenantId, key) {
      const stored = (await redis.eval(CLAIM, 1, redisKey(tenantId, key), PENDING, String(PENDING_TTL_MS))) as string | null;
      if (stored === null) return { kind: 'new' };
      const parsed = JSON.parse(stored) as StoredResponse | { pending: true };
      return 'pending' in parsed ? { kind: 'in_progress' } : { kind: 'done', response: parsed };
    },
    async complete(tenantId, key, response) {
      await redis.set(redisKey(tenantId, key), JSON.stringify(response), 'PX', ttlMs);
    },
    async release(tenantId, key) {
      await redis.eval(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1, redisKey(tenantId, key), PENDING);
    },
  };
}

/**
 * Runs `create` once per Idempotency-Key (when the request has one): a retry with the same
 * key and fingerprint gets the stored answer (`replayed`), a different request 409, one
 * still running 409 with Retry-After. A failed `create` frees the key for a retry.
 */
export async function onceFor(
  idempotency: Idempotency, tenantId: string, key: string | undefined, fingerprint: string,
  create: () => Promise<Omit<StoredResponse, 'fingerprint'>>,
): Promise<StoredResponse & { replayed: boolean }> {
  if (!key) return { ...(await create()), fingerprint, replayed: false };
  const claim = await idempotency.claim(tenantId, key);
  if (claim.kind === 'in_progress') {
    throw requestInProgress();
  }
  if (claim.kind === 'done') {
    if (claim.response.fingerprint !== fingerprint) throw keyReused();
    return { ...claim.response, replayed: true };
  }
  try {
    const response = { ...(await create()), fingerprint };
    await idempotency.complete(tenantId, key, response);
    return { ...response, replayed: false };
  } catch (error) {
    await idempotency.release(tenantId, key).catch(() => undefined);
    throw error;
  }
}
