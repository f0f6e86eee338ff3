import { runScript } from '../infra/scripts.ts';
import type { Redis } from 'ioredis';
import { randomBase62 } from '../infra/ids.ts';
import { batchesFlow, enqueueFairly, type FairEnqueue } from './fairness.ts';

/**
 * A batch's items reach the `remove-bg` queue a window at a time, in submission order, not
 * all at once: a queued BullMQ job costs about 1 KB of Redis, so 100,000 of them would cost
 * 100 MB and seconds of `addBulk` before the client hears back, while an item that is only
 * a record costs what its record does. The batch's `fed` counts the items handed over.
 *
 * Whenever fewer than half a window of the batch's items wait in the queue, the next ones
 * are queued: at commit, when a worker starts one of its items, and on the workers'
 * maintenance sweep (the backstop if a worker died between the two steps). Queueing is
 * at-least-once and idempotent: the range is read under a short lock, queued (a BullMQ id
 * is the job id, so queueing one twice is a no-op), and only then is `fed` moved on.
 */
export interface BatchFeeder {
  /** Queues the batch's next items if it needs them; how many it queued. */
  topUp(batchId: string): Promise<number>;
  /** `topUp` for every batch that still has items to hand over; how many were queued in all. */
  topUpAll(): Promise<number>;
}

/** How long one feeder may hold a batch before another may take it over (its enqueue is idempotent). */
const LOCK_MS = 10_000;
/** Batches one sweep looks at. */
const SWEEP_BATCHES = 1_000;

/** KEYS: batch, feeding, lock. ARGV: id, window, token, lock ms. Returns {first, count, tenant} or nil. */
const CLAIM = `
if redis.call('HGET', KEYS[1], 'status') ~= 'processing' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return nil
end
local fields = redis.call('HMGET', KEYS[1], 'total', 'fed', 'processing', 'ended', 'tenantId')
local total, fed = tonumber(fields[1] or '0'), tonumber(fields[2] or '0')
if fed >= total then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return nil
end
local waiting = math.max(fed - tonumber(fields[3] or '0') - tonumber(fields[4] or '0'), 0)
local window = tonumber(ARGV[2])
if waiting * 2 >= window then return nil end
if not redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[4]) then return nil end
return {fed, math.min(window - waiting, total - fed), fields[5]}
`;

/** KEYS: batch, feeding, lock. ARGV: id, token, first, next. */
const ADVANCE = `
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[3])
if tonumber(redis.call('HGET', KEYS[1], 'fed') or '0') ~= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'fed', ARGV[4])
if tonumber(ARGV[4]) >= tonumber(redis.call('HGET', KEYS[1], 'total') or '0') then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1
`;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end`;

export function makeBatchFeeder({
  redis,
  prefix,
  fairEnqueue,
  window,
}: {
  redis: Redis;
  prefix: string;
  fairEnqueue: FairEnqueue;
  window: number;
}): BatchFeeder {
  const batchKey = (id: string) => `${prefix}:batch:${id}`;
  const feedingKey = `${prefix}:batches:feeding`;

  async function topUp(batchId: string): Promise<number> {
    const keys = [batchKey(batchId), feedingKey, `${batchKey(batchId)}:feeder`];
    const token = randomBase62(16);
    const claim = (await runScript(redis, CLAIM, 3, ...keys, batchId, String(window), token, String(LOCK_MS))) as
      | [number, number, string]
      | null;
    if (!claim) return 0;
    const [first, count, tenantId] = claim;
    try {
      const ids = await redis.lrange(`${batchKey(batchId)}:items`, first, first + count - 1);
      await enqueueFairly(
        fairEnqueue,
        batchesFlow(tenantId),
        ids.map((jobId) => ({ jobId, tenantId })),
      );
      await runScript(redis, ADVANCE, 3, ...keys, batchId, token, String(first), String(first + ids.length));
      return ids.length;
    } catch (error) {
      await runScript(redis, RELEASE, 1, keys[2]!, token).catch(() => undefined);
      throw error;
    }
  }

  return {
    topUp,
    async topUpAll() {
      let queued = 0;
      for (const batchId of await redis.zrange(feedingKey, 0, String(SWEEP_BATCHES - 1)))
        queued += await topUp(batchId);
      return queued;
    },
  };
}
