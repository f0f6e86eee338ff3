import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startApiProcess, startWorkerProcess } from '../helpers/processes.ts';
import {
  distinctPhotos,
  getJobs,
  startFaultStack,
  statusCounts,
  submitAll,
  waitUntil,
  type FaultStack,
  type Json,
} from './stack.ts';

/**
 * An orchestrator SIGKILLs a process that outstays its stop grace period. A worker whose
 * jobs outlast WORKER_SHUTDOWN_TIMEOUT must exit by itself first, and the jobs it gave up
 * are taken over by another worker once their locks expire.
 */

const JOBS = 2;

describe('a worker whose jobs outlast WORKER_SHUTDOWN_TIMEOUT', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    // ByByBG takes far longer than the shutdown timeout.
    stack = await startFaultStack({ latencyMs: 20_000 });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  }, 60_000);

  it('exits 0 after the timeout, and another worker finishes its jobs', async () => {
    const env = stack.env({
      WORKER_CONCURRENCY: String(JOBS),
      WORKER_SHUTDOWN_TIMEOUT: '1s',
      WORKER_LOCK_DURATION: '2s',
      WORKER_STALLED_INTERVAL: '1s',
    });
    const [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env, 'worker-1')]);
    const ids = await submitAll(api.url, stack.apiKey, await distinctPhotos(JOBS));
    await waitUntil(async () => ((await stack.emulatorStats()).inFlight === JOBS ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 20,
      describe: () => `ByByBG never had ${JOBS} calls in flight`,
    });

    worker.kill('SIGTERM');
    expect(await worker.waitForExit(15_000), worker.output()).toEqual({ code: 0, signal: null });
    expect(
      worker.logs().some((entry) => entry.msg === 'in-flight jobs did not finish in time; they will be retried'),
    ).toBe(true);

    const faults = await request(`${stack.emulator.url}/_faults`, {
      method: 'PUT',
      body: JSON.stringify({ latencyMs: 0 }),
      headers: { 'content-type': 'application/json' },
    });
    await faults.body.dump();
    await startWorkerProcess(env, 'worker-2');
    let views: Json[] = [];
    await waitUntil(
      async () => {
        views = await getJobs(api.url, stack.apiKey, ids);
        return views.every((view) => view.status === 'succeeded') ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 100, describe: () => JSON.stringify(statusCounts(views)) },
    );
  }, 180_000);
});
