import type { Redis } from 'ioredis';
import { runScript } from '../infra/scripts.ts';
import { encodeJob, jobRecordKey, tenantJobIndexKey, type JobRecord } from './job-store.ts';
import type { BatchRecord } from './batch-record.ts';

/**
 * A batch item as it is first written: only what is its own. The defaults (no attempts,
 * no upstream calls, its original at `originals/<tenant>/<job>`, size and type unknown
 * until fetched) and the batch-wide settings are left out; job-store fills them in on read.
 */
export type BatchItemRecord = Omit<
  JobRecord,
  'attempts' | 'upstreamCalls' | 'originalKey' | 'originalBytes' | 'originalContentType'
> &
  Partial<Pick<JobRecord, 'originalBytes' | 'originalContentType'>>;

/**
 * Where a batch's creation stands: `creating` while its writer is alive (it renews a lease
 * with every chunk), `abandoned` once the lease has lapsed (the writer died, or lost Redis),
 * `committed` after it went to `processing`, `failed` (`failed_to_create`), `missing`.
 */
type CreationState = 'creating' | 'abandoned' | 'committed' | 'failed' | 'missing';

/** An answer to store in the commit's own script, so a batch never commits without it (idempotency). */
export interface StoredAnswer {
  key: string;
  value: string;
  ttlMs: number;
}

export interface BatchCreation {
  /** Opens a batch in `creating`: items are written next, and none is queued before it commits. */
  open(batch: Pick<BatchRecord, 'id' | 'tenantId' | 'createdAt' | 'rerunOf'>, leaseMs: number): Promise<void>;
  /** One script per chunk: the records, the tenant's job index, the item list, `total` and `queued`, and the lease renewed. */
  addItems(batchId: string, records: readonly BatchItemRecord[], leaseMs: number): Promise<void>;
  /** Renews the lease of a batch still being created (a slow client is not a dead writer). */
  renewLease(batchId: string, leaseMs: number): Promise<void>;
  /**
   * `creating` → `processing` with `fields` (settings, rejected count), and the batch offered
   * to the feeder. `gone`: the batch was no longer being created (failed by the sweep).
   * `completed`: every item had been canceled while it was written.
   */
  commit(
    batchId: string,
    fields: Partial<BatchRecord>,
    answer?: StoredAnswer,
  ): Promise<'committed' | 'completed' | 'gone'>;
  creationState(batchId: string): Promise<CreationState>;
  /**
   * `creating` → `failed_to_create` once its lease has lapsed (at once with `force`): its
   * items stay listed, to be canceled by the caller. False when it was not (or no longer) creating.
   */
  failCreation(batchId: string, options?: { force?: boolean }): Promise<boolean>;
  /** Batches in `creating`, oldest first. */
  creatingIds(count: number): Promise<string[]>;
  /** Deletes a batch that was refused while being written, with every item written so far. */
  discard(batchId: string, tenantId: string): Promise<void>;
}

/** Every key of a batch besides its hash; they all expire with it. */
const BATCH_KEY_SUFFIXES = [
  '',
  ':recent',
  ':items',
  ':ended:succeeded',
  ':ended:failed',
  ':ended:canceled',
  ':review:rejected',
  ':quality:flagged',
];

const EXPIRE_BATCH = `
local function expireBatch(batchKey, ms)
  for _, suffix in ipairs({${BATCH_KEY_SUFFIXES.map((suffix) => `'${suffix}'`).join(', ')}}) do redis.call('PEXPIRE', batchKey .. suffix, ms) end
end
`;

/** KEYS: batch, lease, creating, feeding[, answer]. ARGV: id, ISO time, retention ms, answer, answer TTL ms, fields… */
const COMMIT = `${EXPIRE_BATCH}
if redis.call('HGET', KEYS[1], 'status') ~= 'creating' then return 'gone' end
redis.call('HSET', KEYS[1], 'status', 'processing', unpack(ARGV, 6))
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if #KEYS > 4 then redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[5]) end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
if tonumber(redis.call('HGET', KEYS[1], 'ended') or '0') >= total then
  redis.call('HSET', KEYS[1], 'status', 'completed', 'completedAt', ARGV[2])
  expireBatch(KEYS[1], ARGV[3])
  return 'completed'
end
local clock = redis.call('TIME')
redis.call('ZADD', KEYS[4], clock[1] * 1000 + math.floor(clock[2] / 1000), ARGV[1])
return 'committed'
`;

/** KEYS: batch, lease, creating. ARGV: id, force (1/0), ISO time, retention ms. */
const FAIL_CREATION = `${EXPIRE_BATCH}
if redis.call('HGET', KEYS[1], 'status') ~= 'creating' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'failed_to_create')
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'ended') or '0') >= tonumber(redis.call('HGET', KEYS[1], 'total') or '0') then
  redis.call('HSET', KEYS[1], 'completedAt', ARGV[3])
  expireBatch(KEYS[1], ARGV[4])
end
return 1
`;

/**
 * Lua: a chunk of batch items. KEYS: the item list, the batch, its lease. ARGV: the lease's
 * ms, then the chunk as one JSON array of `[job key, id, tenant index key, createdAt ms,
 * [field, value, …]]` (keys under the batch's prefix, so the same Cluster hash tag). One
 * argument instead of a command per record: encoding a MULTI of a thousand commands was
 * most of what reading a large manifest allocated.
 */
const ADD_ITEMS = `
local ids = {}
for i, item in ipairs(cjson.decode(ARGV[2])) do
  redis.call('HSET', item[1], unpack(item[5]))
  redis.call('ZADD', item[3], item[4], item[2])
  ids[i] = item[2]
end
redis.call('RPUSH', KEYS[1], unpack(ids))
redis.call('HINCRBY', KEYS[2], 'total', #ids)
redis.call('HINCRBY', KEYS[2], 'queued', #ids)
-- XX: a creation that was failed meanwhile gets no lease back.
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1], 'XX')
return #ids
`;

/**
 * JSON for Lua's cjson, which refuses a lone surrogate escape (`"\ud800"`): such text becomes
 * U+FFFD, as it would when written to Redis as a UTF-8 argument.
 */
const wellFormed = (_key: string, value: unknown): unknown =>
  typeof value === 'string' ? value.toWellFormed() : value;

/** Records deleted per round when a refused batch is discarded. */
const DISCARD_PAGE = 1_000;

export function makeBatchCreation({
  redis,
  prefix,
  retentionMs,
}: {
  redis: Redis;
  prefix: string;
  retentionMs: number;
}): BatchCreation {
  const batchKey = (id: string) => `${prefix}:batch:${id}`;
  const leaseKey = (id: string) => `${batchKey(id)}:lease`;
  const itemsKey = (id: string) => `${batchKey(id)}:items`;
  const creatingKey = `${prefix}:batches:creating`;
  const feedingKey = `${prefix}:batches:feeding`;

  return {
    async open({ id, tenantId, createdAt, rerunOf }, leaseMs) {
      await redis
        .multi()
        .hset(
          batchKey(id),
          'id',
          id,
          'tenantId',
          tenantId,
          'status',
          'creating',
          'createdAt',
          createdAt,
          'itemEvents',
          '0',
          ...(rerunOf ? ['rerunOf', rerunOf] : []),
        )
        .set(leaseKey(id), '1', 'PX', leaseMs)
        .zadd(creatingKey, Date.parse(createdAt), id)
        .exec();
    },
    async addItems(batchId, records, leaseMs) {
      if (records.length === 0) return;
      const chunk = records.map((record) => [
        jobRecordKey(prefix, record.id),
        record.id,
        tenantJobIndexKey(prefix, record.tenantId),
        String(Date.parse(record.createdAt)),
        encodeJob(record),
      ]);
      await runScript(
        redis,
        ADD_ITEMS,
        3,
        itemsKey(batchId),
        batchKey(batchId),
        leaseKey(batchId),
        String(leaseMs),
        JSON.stringify(chunk, wellFormed),
      );
    },
    async renewLease(batchId, leaseMs) {
      await redis.set(leaseKey(batchId), '1', 'PX', leaseMs, 'XX');
    },
    async commit(batchId, fields, answer) {
      const keys = [batchKey(batchId), leaseKey(batchId), creatingKey, feedingKey, ...(answer ? [answer.key] : [])];
      const outcome = await redis.eval(
        COMMIT,
        keys.length,
        ...keys,
        batchId,
        new Date().toISOString(),
        String(retentionMs),
        answer?.value ?? '',
        String(answer?.ttlMs ?? 0),
        ...encodeBatchFields(fields),
      );
      return outcome as 'committed' | 'completed' | 'gone';
    },
    async creationState(batchId) {
      const [[, status], [, leased]] = (await redis
        .multi()
        .hget(batchKey(batchId), 'status')
        .exists(leaseKey(batchId))
        .exec()) as [[null, string | null], [null, number]];
      if (status === null) return 'missing';
      if (status === 'creating') return leased ? 'creating' : 'abandoned';
      return status === 'failed_to_create' ? 'failed' : 'committed';
    },
    async failCreation(batchId, { force = false } = {}) {
      const changed = await redis.eval(
        FAIL_CREATION,
        3,
        batchKey(batchId),
        leaseKey(batchId),
        creatingKey,
        batchId,
        force ? '1' : '0',
        new Date().toISOString(),
        String(retentionMs),
      );
      return changed === 1;
    },
    async creatingIds(count) {
      return redis.zrange(creatingKey, 0, String(count - 1));
    },
    async discard(batchId, tenantId) {
      for (;;) {
        const ids = await redis.lrange(itemsKey(batchId), 0, DISCARD_PAGE - 1);
        if (ids.length === 0) break;
        await redis
          .multi()
          .unlink(...ids.map((id) => jobRecordKey(prefix, id)))
          .zrem(tenantJobIndexKey(prefix, tenantId), ...ids)
          .ltrim(itemsKey(batchId), ids.length, -1)
          .exec();
      }
      await redis
        .multi()
        .unlink(...BATCH_KEY_SUFFIXES.map((suffix) => batchKey(batchId) + suffix), leaseKey(batchId))
        .zrem(creatingKey, batchId)
        .zrem(feedingKey, batchId)
        .exec();
    },
  };
}

/** A batch's fields for HSET: settings as JSON, flags as 1/0. */
function encodeBatchFields(fields: Partial<BatchRecord>): string[] {
  const { itemEvents, renditionNames, options, renditionPlans, ...rest } = fields;
  const flat: string[] = [];
  if (itemEvents !== undefined) flat.push('itemEvents', itemEvents ? '1' : '0');
  // Names are [a-z0-9_-]: a comma never occurs in one.
  if (renditionNames?.length) flat.push('renditionNames', renditionNames.join(','));
  if (options) flat.push('options', JSON.stringify(options));
  if (renditionPlans?.length) flat.push('renditionPlans', JSON.stringify(renditionPlans));
  for (const [name, value] of Object.entries(rest))
    if (value !== undefined && typeof value !== 'object') flat.push(name, String(value));
  return flat;
}
