import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { bullPrefix, QUEUE_NAMES } from '@cutout/shared/infra';
import { startApiProcess, startWorkerProcess, type RunningProcess } from '../helpers/processes.ts';
import {
  countBy,
  distinctPhotos,
  printSummary,
  startFaultStack,
  submitAll,
  submitJob,
  waitForJobsToEnd,
  waitUntil,
  type FaultStack,
} from './stack.ts';

/**
 * An image that takes its worker down every time (a decoder crash, the OOM killer) must not
 * take the queue down with it: after BullMQ's stalled limit (`maxStalledCount` 2, so the
 * third death) the job fails with `worker_crashed`, and every other job succeeds.
 *
 * Nothing in the apps can crash a worker on purpose, so the test plays the crash: each time
 * the poison job is active, it SIGKILLs the worker running it and starts a new one. With
 * `WORKER_CONCURRENCY=1` the poison job is the only one that worker holds, so no other job
 * is charged a stall.
 */

const OTHER_JOBS = 4;
/** `maxStalledCount` in apps/worker/src/workers.ts: the third stall dooms the job. */
const MAX_STALLS = 2;
/** A bound on the loop in case the job is never failed. */
const MAX_KILLS = 6;

describe('a poison image that crashes its worker every time', () => {
  let stack: FaultStack;
  let queue: Queue;
  let connection: Redis;

  beforeAll(async () => {
    // Every call lasts long enough that the poison job is surely still running when it is seen active.
    stack = await startFaultStack({ latencyMs: 1_000, fixedResult: true });
    connection = new Redis(stack.redisUrl, { maxRetriesPerRequest: null });
    queue = new Queue(QUEUE_NAMES.removeBg, { connection, prefix: bullPrefix(stack.prefix) });
  }, 60_000);
  afterAll(async () => {
    await queue?.close();
    connection?.disconnect();
    await stack?.close();
  }, 60_000);

  it('fails the poison job with worker_crashed after the stalled limit and runs every other job', async () => {
    const env = stack.env({ WORKER_CONCURRENCY: '1', WORKER_LOCK_DURATION: '2s', WORKER_STALLED_INTERVAL: '1s' });
    const api = await startApiProcess(env);
    const [poisonPhoto, ...otherPhotos] = await distinctPhotos(OTHER_JOBS + 1);
    // Submitted first, so it is the first job a worker takes.
    const poisonId = await submitJob(api.url, stack.apiKey, poisonPhoto!, { metadata: '{"poison":true}' });
    const otherIds = await submitAll(api.url, stack.apiKey, otherPhotos);

    const startedAt = Date.now();
    let worker: RunningProcess = await startWorkerProcess(env, 'worker-0');
    let kills = 0;
    let poisonState = '';
    for (;;) {
      // Active again *after* its last stall was noticed: until then, "active" is the dead worker's
      // claim. Once past the limit, BullMQ marks the job to fail and the next worker that takes
      // it fails it without running it: that worker is left alone.
      const step = await waitUntil(
        async () => {
          const job = await queue.getJob(poisonId);
          poisonState = `${await queue.getJobState(poisonId)}, stalled ${job?.stalledCounter}`;
          if ((await job?.isFailed()) || (await job?.isCompleted())) return 'ended' as const;
          return (await job?.isActive()) && job?.stalledCounter === kills && kills <= MAX_STALLS
            ? ('active' as const)
            : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 20, describe: () => `poison job is ${poisonState} after ${kills} kills` },
      );
      if (step === 'ended') break;
      expect(kills, 'the poison job outlived the stalled limit').toBeLessThan(MAX_KILLS);
      worker.kill('SIGKILL');
      await worker.waitForExit(30_000);
      kills += 1;
      // The next worker finds the job stalled (its lock gone) and either runs it again or fails it.
      worker = await startWorkerProcess(env, `worker-${kills}`);
    }

    const [poison] = await waitForJobsToEnd(api.url, stack.apiKey, [poisonId], 30_000);
    expect(poison).toMatchObject({ status: 'failed', error: { code: 'worker_crashed', retryable: false } });
    expect(kills).toBe(MAX_STALLS + 1);

    const others = await waitForJobsToEnd(api.url, stack.apiKey, otherIds, 60_000);
    expect(countBy(others.map((view) => view.status))).toEqual({ succeeded: OTHER_JOBS });
    expect(worker.done).toBe(false);

    printSummary('poison-job', {
      accepted: OTHER_JOBS + 1,
      succeeded: others.length,
      failed_worker_crashed: 1,
      lost: 0,
      worker_kills: kills,
      recovery_ms: Date.now() - startedAt,
    });
  }, 240_000);
});
