import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { emulatorStats, getJob, setFaults, settle, submitPhotos, type Json } from '../helpers/jobs.ts';
import { scrape, sampleValue } from '../helpers/metrics.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { eventually } from '../helpers/webhooks.ts';

async function readyz(system: TestSystem): Promise<Json> {
  return (await (await request(`${system.apiUrl}/readyz`)).body.json()) as Json;
}

const jobsOf = (system: TestSystem, ids: string[]) => Promise.all(ids.map((id) => getJob(system, id)));
const countOf = (views: Json[], status: string) => views.filter((view) => view.status === status).length;

describe('ByByBG out of credit (402)', () => {
  let system: TestSystem | undefined;
  afterEach(async () => {
    await system?.close();
    system = undefined;
  });

  it('holds every job through a 402 storm, probes once per interval, and finishes them all once credit is back', async () => {
    const probeMs = 500;
    system = await startSystem({
      workers: 2,
      env: { WORKER_CONCURRENCY: '4', BYBYBG_CREDIT_PROBE_INTERVAL: `${probeMs}ms` },
      faults: { credits: 3, fixedResult: true, latencyMs: 20 },
    });
    const ids = await submitPhotos(system, 12, { firstVariant: 500 });

    const degraded = await eventually(
      async () => {
        const body = await readyz(system!);
        return body.checks.upstream.reason === 'upstream_out_of_credit' ? body : undefined;
      },
      { describe: 'readyz reports the account out of credit' },
    );
    expect(degraded.status).toBe('degraded');
    expect(degraded.checks.upstream).toMatchObject({
      ok: false,
      detail: expect.stringContaining('out of credit (402)'),
    });

    // The calls in flight when the credit ran out come back 402; after that, only probes go out.
    await sleep(2 * probeMs);
    const before = await emulatorStats(system);
    const windowStarted = Date.now();
    await sleep(6 * probeMs);
    const after = await emulatorStats(system);
    const windowMs = Date.now() - windowStarted;
    expect(after.total - before.total).toBeLessThanOrEqual(Math.floor(windowMs / probeMs) + 1);
    expect(after.byStatus['402'] - before.byStatus['402']).toBe(after.total - before.total);

    const held = await jobsOf(system, ids);
    expect(countOf(held, 'succeeded')).toBe(3);
    expect(countOf(held, 'failed')).toBe(0);
    expect(
      held.filter((view) => view.status === 'queued').every((view) => view.waiting_reason === 'upstream_out_of_credit'),
    ).toBe(true);

    await setFaults(system, { credits: null });
    const views = await settle(system, ids);
    expect(views.map((view) => view.status)).toEqual(Array(12).fill('succeeded'));
    expect(views.every((view) => view.attempts === 1)).toBe(true);
    const ready = await eventually(
      async () => {
        const body = await readyz(system!);
        return body.status === 'ready' ? body : undefined;
      },
      { describe: 'readyz ready again' },
    );
    expect(ready.checks.upstream.ok).toBe(true);

    const metrics = (await Promise.all(system.workerMetricsUrls.map((url) => scrape(`${url}/metrics`)))).flatMap(
      (scraped) => scraped.samples,
    );
    expect(sampleValue(metrics, 'cutout_upstream_holds_total', { reason: 'upstream_out_of_credit' })).toBe(1);
    expect(
      sampleValue(metrics, 'cutout_upstream_hold_seconds_total', { reason: 'upstream_out_of_credit' }),
    ).toBeGreaterThan(0);
    expect(sampleValue(metrics, 'cutout_upstream_held', { reason: 'upstream_out_of_credit' })).toBe(0);
  }, 60_000);

  it('fails a job still held after BYBYBG_OUT_OF_CREDIT_BUDGET, and runs one submitted later once credit is back', async () => {
    system = await startSystem({
      env: { WORKER_CONCURRENCY: '1', BYBYBG_CREDIT_PROBE_INTERVAL: '300ms', BYBYBG_OUT_OF_CREDIT_BUDGET: '4s' },
      faults: { credits: 0, fixedResult: true },
    });
    const early = await submitPhotos(system, 3, { firstVariant: 600 });

    const failed = await settle(system, early, 30_000);
    expect(failed.map((view) => view.error)).toEqual(
      Array(3).fill({ code: 'upstream_out_of_credit', message: expect.stringContaining('4 s'), retryable: true }),
    );
    // Only the first job reached ByByBG; the others failed without a call of their own.
    expect(failed.reduce((sum, view) => sum + view.upstream_calls, 0)).toBe(1);

    // The account is still out of credit: a job submitted now waits its own 4 s, calling nothing.
    const [late] = await submitPhotos(system, 1, { firstVariant: 610 });
    const waiting = await eventually(
      async () => {
        const view = await getJob(system!, late!);
        return view.waiting_reason === 'upstream_out_of_credit' ? view : undefined;
      },
      { describe: 'the late job waits for credit' },
    );
    expect(waiting).toMatchObject({ status: 'queued', upstream_calls: 0 });

    await setFaults(system, { credits: null });
    const [done] = await settle(system, [late!], 30_000);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 1, upstream_calls: 1 });
  }, 60_000);
});
