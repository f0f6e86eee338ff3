import type { Redis } from 'ioredis';
import { JOB_STATUSES } from '../views/job-codes.ts';
import { batchRejectedKey } from './reviews.ts';
import { makeBatchCreation, type BatchCreation } from './batch-creation.ts';
import type { BatchRecord, EndedStatus } from './batch-record.ts';

const NUMBER_FIELDS = [
  'total',
  ...JOB_STATUSES,
  'rejected',
  'ended',
  'upstreamCalls',
  'creditsSaved',
  'qualityFlagged',
  'fed',
] as const;
const JSON_FIELDS = ['options', 'renditionPlans'] as const;

export interface BatchStore extends BatchCreation {
  get(id: string): Promise<BatchRecord | null>;
  /** Item job ids in submission order, `count` from `offset`. */
  itemIds(id: string, offset: number, count: number): Promise<string[]>;
  /** Ids of the items that ended with `status`, in the order they ended. */
  endedIds(id: string, status: EndedStatus, offset: number, count: number): Promise<string[]>;
  /** Ids of the succeeded items whose cutout has quality flags, in the order they ended. */
  qualityFlaggedIds(id: string, offset: number, count: number): Promise<string[]>;
  /** End times (ms) of the most recently ended items, newest first: the rate behind the ETA. */
  recentEnds(id: string): Promise<number[]>;
  /** Marks a running batch canceled; false when it had already ended. */
  markCanceled(id: string): Promise<boolean>;
  /** Whether batch.completed was queued already: a rerun of the last item must not queue it again. */
  isAnnounced(id: string): Promise<boolean>;
  markAnnounced(id: string): Promise<void>;
}

/**
 * A finished batch's keys get the job retention as TTL from job-store's TRANSITION, with its
 * last item (`retentionMs` is for batches that end otherwise: see batch-creation.ts).
 */
export function makeBatchStore({
  redis,
  prefix,
  retentionMs,
}: {
  redis: Redis;
  prefix: string;
  retentionMs: number;
}): BatchStore {
  const batchKey = (id: string) => `${prefix}:batch:${id}`;

  return {
    ...makeBatchCreation({ redis, prefix, retentionMs }),
    async get(id) {
      const [[, fields], [, rejected]] = (await redis
        .multi()
        .hgetall(batchKey(id))
        .zcard(batchRejectedKey(prefix, id))
        .exec()) as [[null, Record<string, string>], [null, number]];
      const hash = fields;
      if (!hash.id) return null;
      const record: Record<string, unknown> = {
        ...hash,
        itemEvents: hash.itemEvents === '1',
        reviewRejected: rejected,
        renditionNames: hash.renditionNames ? hash.renditionNames.split(',') : undefined,
      };
      for (const name of NUMBER_FIELDS) record[name] = Number(hash[name] ?? 0);
      for (const name of JSON_FIELDS) record[name] = hash[name] ? JSON.parse(hash[name]) : undefined;
      return record as unknown as BatchRecord;
    },
    async itemIds(id, offset, count) {
      return redis.lrange(`${batchKey(id)}:items`, offset, offset + count - 1);
    },
    async endedIds(id, status, offset, count) {
      return redis.lrange(`${batchKey(id)}:ended:${status}`, offset, offset + count - 1);
    },
    async qualityFlaggedIds(id, offset, count) {
      return redis.lrange(`${batchKey(id)}:quality:flagged`, offset, offset + count - 1);
    },
    async recentEnds(id) {
      return (await redis.lrange(`${batchKey(id)}:recent`, 0, -1)).map(Number);
    },
    async markCanceled(id) {
      const changed = await redis.eval(
        `if redis.call('HGET', KEYS[1], 'status') ~= 'processing' then return 0 end
         redis.call('HSET', KEYS[1], 'status', 'canceled', 'canceledAt', ARGV[1]) return 1`,
        1,
        batchKey(id),
        new Date().toISOString(),
      );
      return changed === 1;
    },
    async isAnnounced(id) {
      return (await redis.hget(batchKey(id), 'announced')) === '1';
    },
    async markAnnounced(id) {
      // A batch that completed has a TTL already (set by the last transition); HSET keeps it.
      await redis.hset(batchKey(id), 'announced', '1');
    },
  };
}
