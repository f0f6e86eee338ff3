import type { Redis } from 'ioredis';
import { decodeFlatJob, jobRecordKey, WITH_BATCH_SETTINGS, type JobRecord, type ReviewVerdict } from './job-store.ts';

/**
 * Sets (ARGV[1] JSON) or clears (ARGV[1] empty) a job's review verdict, and keeps the
 * batch's rejected set (KEYS[2], scored by first flag time so pages keep their order) in
 * step. The set takes the batch's remaining TTL, so a finished batch's flags expire with it.
 * Returns the record, or nil for a job that is gone.
 */
const SET_REVIEW = `${WITH_BATCH_SETTINGS}
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'review') else redis.call('HSET', KEYS[1], 'review', ARGV[1]) end
if #KEYS > 1 then
  if ARGV[1] == '' then redis.call('ZREM', KEYS[2], ARGV[3]) else redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[3]) end
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return withBatchSettings(redis.call('HGETALL', KEYS[1]), KEYS[1], ARGV[4])
`;

export interface Reviews {
  /** Records a verdict (null clears it); null when the job no longer exists. */
  set(record: Pick<JobRecord, 'id' | 'batchId'>, verdict: ReviewVerdict | null): Promise<JobRecord | null>;
  /** A batch's rejected item ids in the order they were flagged. */
  rejectedIds(batchId: string, offset: number, count: number): Promise<string[]>;
}

export const batchRejectedKey = (prefix: string, batchId: string): string =>
  `${prefix}:batch:${batchId}:review:rejected`;

export function makeReviews({ redis, prefix }: { redis: Redis; prefix: string }): Reviews {
  return {
    async set(record, verdict) {
      const keys = [jobRecordKey(prefix, record.id)];
      if (record.batchId) keys.push(batchRejectedKey(prefix, record.batchId), `${prefix}:batch:${record.batchId}`);
      const flat = (await redis.eval(
        SET_REVIEW,
        keys.length,
        ...keys,
        verdict ? JSON.stringify(verdict) : '',
        String(Date.now()),
        record.id,
        `${prefix}:batch:`,
      )) as string[] | null;
      return flat ? decodeFlatJob(flat) : null;
    },
    async rejectedIds(batchId, offset, count) {
      return redis.zrange(batchRejectedKey(prefix, batchId), offset, String(offset + count - 1));
    },
  };
}
