import type { Redis } from 'ioredis';
import { sha256Hex } from '@cutout/shared/infra';
import { ApiError } from './errors.ts';

/** What a first request answered, replayed to every retry with the same key. */
export interface StoredResponse {
  fingerprint: string;
  statusCode: number;
  location?: string;
  body: unknown;
}

/** `batchId`: the batch the running request is writing, whose state says whether it is still alive. */
type IdempotencyClaim =
  | { kind: 'new' }
  | { kind: 'in_progress'; batchId?: string }
  | { kind: 'done'; response: StoredResponse };

export interface Idempotency {
  claim(tenantId: string, key: string): Promise<IdempotencyClaim>;
  complete(tenantId: string, key: string, response: StoredResponse): Promise<void>;
  /** The first request failed: let a retry with the same key run afresh. */
  release(tenantId: string, key: string): Promise<void>;
  /**
   * Names the batch a claimed request is writing. The claim then lasts as long as a stored
   * answer would: a retry decides from the batch's state, not from a timer.
   */
  attach(tenantId: string, key: string, batchId: string): Promise<void>;
  /** A retry takes over the claim of a request that died writing `batchId`; false when another retry did first. */
  takeOver(tenantId: string, key: string, batchId: string): Promise<boolean>;
  /** The key and value `complete` would write, for a script that stores the answer with what it answers for. */
  answer(tenantId: string, key: string, response: StoredResponse): { key: string; value: string; ttlMs: number };
}

const PENDING = '{"pending":true}';
const pendingFor = (batchId: string) => JSON.stringify({ pending: true, batchId });
/** A claim whose request died without answering frees itself after this. */
const PENDING_TTL_MS = 5 * 60_000;

const CLAIM = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return nil end
return redis.call('GET', KEYS[1])
`;

/** A request with the key is still running: the client retries shortly. */
export const requestInProgress = () =>
  new ApiError(
    'idempotency_request_in_progress',
    'A request with this Idempotency-Key is still being processed; retry shortly',
    { 'retry-after': '1' },
  );

/** The key came back with a different request. */
export const keyReused = () =>
  new ApiError('idempotency_key_reused', 'This Idempotency-Key was used with a different request in the last 24 hours');

/** Per tenant, for `ttlMs` (24 h): keys are hashed so no client string becomes part of a Redis key. */
export function makeIdempotency({
  redis,
  prefix,
  ttlMs,
}: {
  redis: Redis;
  prefix: string;
  ttlMs: number;
}): Idempotency {
  const redisKey = (tenantId: string, key: string) => `${prefix}:idempotency:${tenantId}:${sha256Hex(key)}`;
  return {
    async claim(tenantId, key) {
      const stored = (await redis.eval(CLAIM, 1, redisKey(tenantId, key), PENDING, String(PENDING_TTL_MS))) as
        | string
        | null;
      if (stored === null) return { kind: 'new' };
      const parsed = JSON.parse(stored) as StoredResponse | { pending: true; batchId?: string };
      return 'pending' in parsed
        ? { kind: 'in_progress', batchId: parsed.batchId }
        : { kind: 'done', response: parsed };
    },
    async complete(tenantId, key, response) {
      await redis.set(redisKey(tenantId, key), JSON.stringify(response), 'PX', ttlMs);
    },
    async release(tenantId, key) {
      await redis.eval(
        `local v = redis.call('GET', KEYS[1]) if v and string.find(v, '"pending":true', 1, true) == 2 then return redis.call('DEL', KEYS[1]) end return 0`,
        1,
        redisKey(tenantId, key),
      );
    },
    async attach(tenantId, key, batchId) {
      await redis.set(redisKey(tenantId, key), pendingFor(batchId), 'PX', ttlMs, 'XX');
    },
    async takeOver(tenantId, key, batchId) {
      const taken = await redis.eval(
        `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1`,
        1,
        redisKey(tenantId, key),
        pendingFor(batchId),
        PENDING,
        String(PENDING_TTL_MS),
      );
      return taken === 1;
    },
    answer(tenantId, key, response) {
      return { key: redisKey(tenantId, key), value: JSON.stringify(response), ttlMs };
    },
  };
}

/**
 * Runs `create` once per Idempotency-Key (when the request has one): a retry with the same
 * key and fingerprint gets the stored answer (`replayed`), a different request 409, one
 * still running 409 with Retry-After. A failed `create` frees the key for a retry.
 */
export async function onceFor(
  idempotency: Idempotency,
  tenantId: string,
  key: string | undefined,
  fingerprint: string,
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
