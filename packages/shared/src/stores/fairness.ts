import { runScript } from '../infra/scripts.ts';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAMES, removeBgJobOptions, type RemoveBgPayload } from '../infra/queues.ts';

/**
 * Fair scheduling on the single `remove-bg` queue with open-source BullMQ: every job gets a
 * slot in a per-flow "virtual time", and its BullMQ priority is that slot, so the queue
 * serves the lowest slot first. A flow's next slot is max(its own next slot, the global
 * served position): a flow that was idle starts at the head of the queue, not behind
 * the backlog of a busy one, and flows with work interleave round-robin. One flow per
 * tenant for single jobs and one per tenant for its batches, so a tenant's own batch does
 * not hold up its interactive calls either. See docs/OPERATIONS.md#fair-scheduling.
 */
export interface FairScheduler {
  /** Reserves `count` consecutive slots of `flow`; returns the first. */
  reserve(flow: string, count: number): Promise<number>;
  /** A job with this slot started: the served position moves up to it (never back). */
  served(slot: number): Promise<void>;
}

/** BullMQ priorities run 1 … 2^21; slots past that wrap (the documented limit). */
export const MAX_PRIORITY = 2 ** 21;
export const priorityOfSlot = (slot: number): number => 1 + (slot % (MAX_PRIORITY - 1));

export const singleJobsFlow = (tenantId: string): string => `${tenantId}:jobs`;
export const batchesFlow = (tenantId: string): string => `${tenantId}:batches`;

const RESERVE = `
local served = tonumber(redis.call('GET', KEYS[1]) or '0')
local next = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local first = math.max(served, next)
redis.call('HSET', KEYS[2], ARGV[1], first + tonumber(ARGV[2]))
return first
`;

const SERVED = `
local served = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > served then redis.call('SET', KEYS[1], ARGV[1]) end
`;

export function makeFairScheduler({ redis, prefix }: { redis: Redis; prefix: string }): FairScheduler {
  const servedKey = `${prefix}:fair:served`;
  const flowsKey = `${prefix}:fair:flows`;
  return {
    async reserve(flow, count) {
      return Number(await runScript(redis, RESERVE, 2, servedKey, flowsKey, flow, String(count)));
    },
    async served(slot) {
      await runScript(redis, SERVED, 1, servedKey, String(slot));
    },
  };
}

export interface FairEnqueue {
  queue: Queue<RemoveBgPayload>;
  scheduler: FairScheduler;
  attempts: number;
  retryDelayMs: number;
}

/** Queues jobs of one flow in one `addBulk`, each at its own slot's priority. */
export async function enqueueFairly(
  { queue, scheduler, attempts, retryDelayMs }: FairEnqueue,
  flow: string,
  jobs: readonly { jobId: string; tenantId: string }[],
): Promise<void> {
  if (jobs.length === 0) return;
  const first = await scheduler.reserve(flow, jobs.length);
  await queue.addBulk(
    jobs.map(({ jobId, tenantId }, i) => ({
      name: QUEUE_NAMES.removeBg,
      data: { jobId, tenantId, slot: first + i },
      opts: removeBgJobOptions(jobId, { attempts, retryDelayMs, priority: priorityOfSlot(first + i) }),
    })),
  );
}
