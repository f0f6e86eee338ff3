import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultKey } from '@cutout/shared/infra';
import { startApiProcess, startWorkerProcess } from '../helpers/processes.ts';
import {
  distinctPhotos,
  getJobs,
  startFaultStack,
  statusCounts,
  submitAll,
  waitUntil,
  type FaultStack,
} from './stack.ts';

/**
 * SIGTERM is how compose, Kubernetes and `docker stop` stop a worker: it must finish the
 * images it has in flight (their ByByBG calls are paid for) and exit 0, leaving nothing
 * for another worker to pick up as stalled.
 */

const JOBS = 4;

describe('a worker stopped with SIGTERM', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    // Slow enough that all four calls are surely in flight when the signal arrives.
    stack = await startFaultStack({ latencyMs: 1500 });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  }, 60_000);

  it('finishes its in-flight jobs, then exits 0', async () => {
    const env = stack.env({ WORKER_CONCURRENCY: String(JOBS), WORKER_SHUTDOWN_TIMEOUT: '60s' });
    const [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);

    const ids = await submitAll(api.url, stack.apiKey, await distinctPhotos(JOBS));
    await waitUntil(async () => ((await stack.emulatorStats()).inFlight === JOBS ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 20,
      describe: () => `ByByBG never had ${JOBS} calls in flight`,
    });

    worker.kill('SIGTERM');
    const exit = await worker.waitForExit(90_000);
    expect(exit, worker.output()).toEqual({ code: 0, signal: null });
    expect(worker.logs().some((entry) => entry.msg === 'shutting down')).toBe(true);

    // No other worker runs: whatever the records say now is what the stopped one left.
    const views = await getJobs(api.url, stack.apiKey, ids);
    expect(statusCounts(views)).toEqual({ succeeded: JOBS });
    for (const view of views) {
      expect(view.attempts, view.id).toBe(1);
      expect(view.upstream_calls, view.id).toBe(1);
      expect(await stack.storage.head(resultKey(stack.tenantId, view.id)), view.id).toMatchObject({
        bytes: view.result.bytes,
      });
    }

    const stats = await stack.emulatorStats();
    expect(stats.inFlight).toBe(0);
    expect(stats.byStatus).toEqual({ '200': JOBS });

    const counts = await stack.queueCounts('remove-bg');
    expect(counts).toMatchObject({ active: 0, waiting: 0, delayed: 0, prioritized: 0, failed: 0 });
  }, 180_000);
});
