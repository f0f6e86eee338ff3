import { afterEach, describe, expect, it } from 'vitest';
import { productImage, PRODUCT_SHOT, undecodablePng } from '../helpers/images.ts';
import { emulatorStats, setFaults, settle, submitPhoto, submitPhotos as submit } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';

describe('the worker against an unreliable ByByBG', () => {
  let system: TestSystem | undefined;
  afterEach(async () => {
    await system?.close();
    system = undefined;
  });

  it('waits out 429s without using an attempt, so every job succeeds with one attempt allowed', async () => {
    system = await startSystem({
      env: { BYBYBG_MAX_ATTEMPTS: '1' },
      faults: { rateLimit: { perSecond: 4, burst: 1 } },
    });
    const views = await settle(system, await submit(system, 6));
    expect(views.map((view) => view.status)).toEqual(Array(6).fill('succeeded'));
    const stats = await emulatorStats(system);
    expect(stats.byStatus['200']).toBe(6);
  });

  it('retries 5xx answers with backoff until the jobs succeed', async () => {
    system = await startSystem({
      env: { BYBYBG_MAX_ATTEMPTS: '12', BYBYBG_RETRY_DELAY: '10ms' },
      faults: { errorRate: 0.4 },
    });
    const views = await settle(system, await submit(system, 8));
    expect(views.map((view) => view.status)).toEqual(Array(8).fill('succeeded'));
    const stats = await emulatorStats(system);
    const upstreamCalls = views.reduce((sum, view) => sum + view.upstream_calls, 0);
    expect(upstreamCalls).toBe(stats.total);
  });

  it('fails a job with upstream_unavailable after exactly the configured attempts when ByByBG keeps failing', async () => {
    system = await startSystem({
      env: { BYBYBG_MAX_ATTEMPTS: '3', BYBYBG_RETRY_DELAY: '10ms' },
      faults: { errorRate: 1 },
    });
    const [view] = await settle(system, await submit(system, 1));
    expect(view!.status).toBe('failed');
    expect(view!.error).toMatchObject({ code: 'upstream_unavailable', retryable: true });
    expect(view!.attempts).toBe(3);
    expect(view!.upstream_calls).toBe(3);
    expect((await emulatorStats(system)).total).toBe(3);
  });

  it('fails a job at once with upstream_forbidden when ByByBG answers 403', async () => {
    system = await startSystem({ env: { BYBYBG_MAX_ATTEMPTS: '5' } });
    await setFaults(system, { forbiddenKeys: [system.config.bybybg.apiKeys[0]] });
    const [view] = await settle(system, await submit(system, 1));
    expect(view!.status).toBe('failed');
    expect(view!.error).toMatchObject({ code: 'upstream_forbidden', retryable: false });
    expect(view!.upstream_calls).toBe(1);
  });

  it('keeps 429s rare in a storm: 100 jobs, 4 in flight, 5 calls/s allowed, no attempt used', async () => {
    system = await startSystem({
      workers: 2,
      env: { WORKER_CONCURRENCY: '2', BYBYBG_MAX_ATTEMPTS: '1' },
      faults: { rateLimit: { perSecond: 5, burst: 2 }, fixedResult: true },
    });
    const views = await settle(system, await submit(system, 100), 120_000);
    expect(views.filter((view) => view.status !== 'succeeded')).toEqual([]);
    expect(views.every((view) => view.attempts === 1)).toBe(true);
    const stats = await emulatorStats(system);
    const limited = stats.byStatus['429'] ?? 0;
    console.log(`429 storm: ${limited} of ${stats.total} calls answered 429`);
    expect(limited / stats.total).toBeLessThan(0.1);
  }, 180_000);

  it('fails a job ByByBG cannot decode with upstream_rejected and its message', async () => {
    system = await startSystem({ env: { BYBYBG_MAX_ATTEMPTS: '3' } });
    const broken = undecodablePng(await productImage('png', PRODUCT_SHOT, 300));
    const [view] = await settle(system, [await submitPhoto(system, broken)]);
    expect(view!.status).toBe('failed');
    expect(view!.error.code).toBe('upstream_rejected');
    expect(view!.error.retryable).toBe(false);
    expect(view!.error.message.length).toBeGreaterThan(0);
    expect(view!.upstream_calls).toBe(1);
  });

  it('retries a truncated answer and fails with upstream_unavailable when it keeps happening', async () => {
    system = await startSystem({
      env: { BYBYBG_MAX_ATTEMPTS: '2', BYBYBG_RETRY_DELAY: '10ms' },
      faults: { truncateRate: 1 },
    });
    const [view] = await settle(system, await submit(system, 1));
    expect(view!.status).toBe('failed');
    expect(view!.error.code).toBe('upstream_unavailable');
    expect(view!.upstream_calls).toBe(2);
  });

  it('gives up on a hung call at BYBYBG_TIMEOUT and reports upstream_unavailable', async () => {
    system = await startSystem({ env: { BYBYBG_MAX_ATTEMPTS: '1', BYBYBG_TIMEOUT: '300ms' }, faults: { hangRate: 1 } });
    const [view] = await settle(system, await submit(system, 1));
    expect(view!.status).toBe('failed');
    expect(view!.error).toMatchObject({ code: 'upstream_unavailable', retryable: true });
    expect(view!.error.message).toMatch(/300 ms/);
  });

  it('understands a JSON answer carrying the cutout as base64', async () => {
    system = await startSystem({ faults: { responseMode: 'json-base64' } });
    const [view] = await settle(system, await submit(system, 1));
    expect(view!.status).toBe('succeeded');
    expect(view!.result.content_type).toBe('image/png');
  });

  it('downloads a result URL from a JSON answer when WEBHOOK_ALLOW_PRIVATE allows its address', async () => {
    // The emulator's result URLs are on its own loopback address, which the test system allows.
    system = await startSystem({ faults: { responseMode: 'json-url' } });
    const [view] = await settle(system, await submit(system, 1));
    expect(view!.status).toBe('succeeded');
    expect(view!.result.content_type).toBe('image/png');
  });

  it('fails a job whose result URL is at an address the SSRF guard refuses, naming no address', async () => {
    system = await startSystem({ env: { WEBHOOK_ALLOW_PRIVATE: '' }, faults: { responseMode: 'json-url' } });
    const [view] = await settle(system, await submit(system, 1));
    expect(view!.status).toBe('failed');
    expect(view!.error).toMatchObject({ code: 'upstream_bad_response', retryable: false });
    expect(view!.error.message).toMatch(/not public/);
    expect(view!.error.message).not.toMatch(/127\.0\.0\.1|_results/);
    expect(view!.upstream_calls).toBe(1);
  });
});
