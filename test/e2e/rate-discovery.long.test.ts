import { afterAll, describe, expect, it } from 'vitest';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { emulatorStats, settle, submitPhotos } from '../helpers/jobs.ts';

const LIMIT = 20;
const WARM_UP_MS = 60_000;
const MEASURE_MS = 20_000;

describe('rate discovery with BYBYBG_RATE_LIMIT unset', () => {
  // Runs long by nature: a minute to settle, 20 s measured.
  let system: TestSystem | undefined;
  afterAll(async () => {
    await system?.close();
  });

  it('settles near the account limit with few 429s, shared by two workers', async () => {
    system = await startSystem({
      workers: 2,
      env: { WORKER_CONCURRENCY: '6', BYBYBG_MAX_ATTEMPTS: '1' },
      // Only what ByByBG documents: a 429 with Retry-After, no X-RateLimit-* headers.
      faults: {
        rateLimit: { perSecond: LIMIT, burst: 5 },
        rateLimitHeaders: false,
        fixedResult: true,
        latencyMs: 40,
        latencyJitterMs: 40,
      },
    });
    // Workers start as soon as the first job is in, so the clock starts before submitting;
    // a quarter more jobs than the run can use keeps the queue from running dry, and they are
    // submitted 8 at a time: one after another, a slow machine submitted fewer than LIMIT a
    // second, so the measured window saw the submission rate (25 calls in 20 s once), not the limit.
    const started = Date.now();
    const total = Math.ceil(((WARM_UP_MS + MEASURE_MS) / 1000) * LIMIT * 1.25);
    const ids = await submitPhotos(system, total, { parallel: 8 });

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, WARM_UP_MS - (Date.now() - started))));
    const before = await emulatorStats(system);
    const windowStart = Date.now();
    await new Promise((resolve) => setTimeout(resolve, MEASURE_MS));
    const after = await emulatorStats(system);
    const seconds = (Date.now() - windowStart) / 1000;

    const ok = (after.byStatus['200'] ?? 0) - (before.byStatus['200'] ?? 0);
    const limited = (after.byStatus['429'] ?? 0) - (before.byStatus['429'] ?? 0);
    const limitedShare = limited / Math.max(1, ok + limited);
    const governor = await system.services.upstream.rate();
    console.log(
      `rate discovery: ${ok} successful calls and ${limited} × 429 in ${seconds.toFixed(1)} s; governor ${JSON.stringify(governor)}`,
    );
    // Throughput is the benchmark's (scenario 11); here: few 429s, and the rate found is the limit.
    expect(limitedShare).toBeLessThanOrEqual(0.02);
    expect(governor?.mode).toBe('discovering');
    expect(governor!.ratePerSecond).toBeGreaterThanOrEqual(LIMIT * 0.8);
    expect(governor!.ratePerSecond).toBeLessThanOrEqual(LIMIT * 1.1);

    const views = await settle(system, ids, 120_000);
    expect(views.filter((view) => view.status !== 'succeeded')).toEqual([]);
  }, 300_000);
});
