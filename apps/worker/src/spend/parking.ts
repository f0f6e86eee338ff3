import { DelayedError, Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RemoveBgPayload } from '@cutout/shared/infra';

/**
 * Jobs that must wait for something other than the upstream rate (a tenant's budget, the
 * account's credit) are parked: moved to BullMQ's delayed set until the moment they can run
 * at the latest (the budget's reset, the end of their wait), and listed in a lot so they
 * can be woken earlier (the budget raised, credit back). A parked job leaves the queue's
 * head, so it holds up nobody else, and it uses no attempt.
 *
 * A lot is a sorted set of job ids scored by fair-scheduling slot, so woken jobs go in the
 * order they were queued. Entries of jobs that ran or were canceled meanwhile are dropped
 * when the lot is next woken. Whatever goes wrong, a parked job still runs at `until`.
 */
export interface ParkingLots {
  /** Parks the active job (held with `token`) in `lot` until `until` (ms) at the latest. Always throws DelayedError. */
  park(job: Job<RemoveBgPayload>, token: string | undefined, lot: string, until: number): Promise<never>;
  /** Lots with parked jobs. */
  lots(): Promise<string[]>;
  /** Wakes up to `count` of the lot's jobs, lowest slot first; returns how many were delayed and are now waiting. */
  wake(lot: string, count: number): Promise<number>;
}

export const budgetLot = (tenantId: string): string => `budget:${tenantId}`;
export const CREDIT_LOT = 'credit';
export const tenantOfLot = (lot: string): string | undefined =>
  lot.startsWith('budget:') ? lot.slice('budget:'.length) : undefined;

export interface ParkingDeps {
  redis: Redis;
  prefix: string;
  queue: Queue<RemoveBgPayload>;
  /** Each job parked, by lot kind (`budget`, `credit`), for metrics. */
  onPark?: (kind: 'budget' | 'credit') => void;
}

export function makeParkingLots({ redis, prefix, queue, onPark }: ParkingDeps): ParkingLots {
  const lotsKey = `${prefix}:parked-lots`;
  const lotKey = (lot: string) => `${prefix}:parked:${lot}`;

  async function wakeOne(id: string): Promise<boolean> {
    const job = await Job.fromId<RemoveBgPayload>(queue, id);
    if (!job) return false;
    // Only a job still delayed is woken; one that ran, woke by itself or was canceled is not.
    return job.promote().then(
      () => true,
      () => false,
    );
  }

  return {
    async park(job, token, lot, until) {
      // Listed first: a crash between the two steps leaves a stale entry, never an unlisted wait.
      await redis
        .multi()
        .zadd(lotKey(lot), job.data.slot ?? 0, job.id!)
        .sadd(lotsKey, lot)
        .exec();
      await job.moveToDelayed(until, token);
      onPark?.(tenantOfLot(lot) === undefined ? 'credit' : 'budget');
      throw new DelayedError();
    },
    async lots() {
      return redis.smembers(lotsKey);
    },
    async wake(lot, count) {
      const ids = await redis.zrange(lotKey(lot), '0', String(Math.max(0, count - 1)));
      if (ids.length === 0) {
        // Removed only while still empty: a job parked meanwhile keeps its lot listed.
        await redis.eval(
          `if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end`,
          2,
          lotKey(lot),
          lotsKey,
          lot,
        );
        return 0;
      }
      // Unlisted before they are woken, so a job parked again right after waking is listed anew.
      await redis.zrem(lotKey(lot), ...ids);
      const woken = await Promise.all(ids.map(wakeOne));
      return woken.filter(Boolean).length;
    },
  };
}
