import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { productImage, PRODUCT_SHOT, undecodablePng } from '../helpers/images.ts';
import { startApiProcess, startWorkerProcess } from '../helpers/processes.ts';
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
  type Json,
} from './stack.ts';

/**
 * Every misbehaviour of ByByBG the worker handles, at once, in one run: a rate limit far
 * below the workers' concurrency (a 429 storm), 30 % of calls answered 5xx, calls that hang
 * past BYBYBG_TIMEOUT, and a key that ByByBG refuses until it is fixed mid-run. Every job
 * must still end as a user expects: succeeded, except the one image ByByBG cannot decode,
 * which fails with `upstream_rejected`.
 */

const JOBS = 40;

describe('ByByBG misbehaving every way at once', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({
      rateLimit: { perSecond: 8, burst: 2 },
      errorRate: 0.3,
      hangRate: 0.1,
      latencyMs: 20,
      // Real cutouts: the emulator must decode each image, so it can refuse the undecodable one.
      fixedResult: false,
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  }, 60_000);

  it('ends every job as expected through 429s, 5xx, hangs and a key fixed mid-run', async () => {
    const env = stack.env({
      WORKER_CONCURRENCY: '4',
      // Told a rate far above ByByBG's 8 calls/s, the workers run into a storm of 429s.
      BYBYBG_RATE_LIMIT: '50',
      BYBYBG_MAX_ATTEMPTS: '25',
      BYBYBG_RETRY_DELAY: '20ms',
      BYBYBG_TIMEOUT: '500ms',
      BYBYBG_KEY_PROBE_INTERVAL: '300ms',
    });
    // The account's key is refused until the operator fixes it.
    await stack.setEmulatorKeys(['some-other-account-key-000']);
    const [api] = await Promise.all([
      startApiProcess(env),
      startWorkerProcess(env, 'worker-1'),
      startWorkerProcess(env, 'worker-2'),
    ]);

    const ids = await submitAll(api.url, stack.apiKey, await distinctPhotos(JOBS));
    const photo = await productImage('png', PRODUCT_SHOT, 301);
    const undecodable = await submitJob(api.url, stack.apiKey, undecodablePng(photo));

    // The queue holds on the bad key: jobs wait, say why, and none fails.
    let waiting: Json[] = [];
    await waitUntil(
      async () => {
        waiting = await Promise.all(
          ids
            .slice(0, 5)
            .map(
              async (id) =>
                (await (
                  await request(`${api.url}/v1/jobs/${id}`, { headers: { 'x-api-key': stack.apiKey } })
                ).body.json()) as Json,
            ),
        );
        return waiting.some((view) => view.waiting_reason === 'upstream_unauthorized') ? true : undefined;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        describe: () => `waiting reasons: ${JSON.stringify(waiting.map((view) => view.waiting_reason))}`,
      },
    );
    await sleep(1_000);
    const heldStats = await stack.emulatorStats();
    await stack.setEmulatorKeys([stack.emulatorKey]);
    const fixedAt = Date.now();

    const views = await waitForJobsToEnd(api.url, stack.apiKey, [...ids, undecodable], 240_000);
    const doneMs = Date.now() - fixedAt;
    const byId = new Map(views.map((view) => [String(view.id), view]));
    expect(countBy(ids.map((id) => byId.get(id)!.status))).toEqual({ succeeded: JOBS });
    expect(byId.get(undecodable)).toMatchObject({
      status: 'failed',
      error: { code: 'upstream_rejected', retryable: false },
    });

    const stats = await stack.emulatorStats();
    // Every fault really happened in this run.
    expect(heldStats.byStatus['401'] ?? 0).toBeGreaterThan(0);
    expect(stats.byStatus['429'] ?? 0).toBeGreaterThan(0);
    expect((stats.byStatus['500'] ?? 0) + (stats.byStatus['502'] ?? 0) + (stats.byStatus['503'] ?? 0)).toBeGreaterThan(
      0,
    );
    expect(stats.byStatus.hang ?? 0).toBeGreaterThan(0);

    printSummary('upstream-storm', {
      accepted: JOBS + 1,
      succeeded: JOBS,
      failed_expected: 1,
      lost: 0,
      upstream_calls: stats.total,
      answered_401: stats.byStatus['401'] ?? 0,
      answered_429: stats.byStatus['429'] ?? 0,
      answered_5xx: (stats.byStatus['500'] ?? 0) + (stats.byStatus['502'] ?? 0) + (stats.byStatus['503'] ?? 0),
      hangs: stats.byStatus.hang ?? 0,
      max_attempts: Math.max(...views.map((view) => Number(view.attempts))),
      all_done_after_key_fix_ms: doneMs,
    });
  }, 300_000);
});
