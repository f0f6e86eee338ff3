import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData } from 'undici';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { emulatorStats, getJob, settle, type Json } from '../helpers/jobs.ts';
import { batchEnded, getBatch, postBatch } from '../helpers/batches.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { callApi, eventually } from '../helpers/webhooks.ts';

async function photoBatch(count: number, firstVariant: number): Promise<FormData> {
  const form = new FormData();
  for (let i = 0; i < count; i++)
    form.append(
      'file',
      new Blob([await productImage('png', PRODUCT_SHOT, firstVariant + i)], { type: 'image/png' }),
      `item-${i}.png`,
    );
  return form;
}

async function batchJobs(system: TestSystem, batchId: string): Promise<Json[]> {
  const { body } = await callApi(system, 'GET', `/v1/batches/${batchId}/jobs?limit=100`);
  return Promise.all((body.data as Json[]).map((job) => getJob(system, job.id)));
}

describe('budgets of upstream calls per tenant', () => {
  let system: TestSystem;

  beforeAll(async () => {
    // Three worker instances with 24 jobs in flight between them race for the last calls of the budget.
    system = await startSystem({
      workers: 3,
      env: { WORKER_CONCURRENCY: '8' },
      faults: { fixedResult: true, latencyMs: 30 },
    });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('lets exactly the budget through with three workers racing, parks the rest, and resumes them when it is raised', async () => {
    await system.services.budgets.setLimits('acme', { daily: 10 });
    const batch = await postBatch(system, await photoBatch(40, 70_000));
    expect(batch.status).toBe(202);

    const waiting = await eventually(
      async () => {
        const jobs = await batchJobs(system, batch.body.id);
        const parked = jobs.filter((job) => job.status === 'queued' && job.waiting_reason === 'budget_exhausted');
        return jobs.filter((job) => job.status === 'succeeded').length === 10 && parked.length === 30
          ? jobs
          : undefined;
      },
      { timeoutMs: 30_000, describe: '10 succeeded and 30 waiting for the budget' },
    );
    expect(waiting.every((job) => job.attempts <= 1 && job.error === null)).toBe(true);

    // Another tenant's images go through while acme's wait.
    const other = await postBatch(system, await photoBatch(3, 71_000), { key: system.otherApiKey });
    const otherDone = await batchEnded({ ...system, apiKey: system.otherApiKey }, other.body.id, 30_000);
    expect(otherDone.counts.succeeded).toBe(3);

    await sleep(1_000);
    expect((await emulatorStats(system)).total).toBe(10 + 3);
    const { body: progress } = await getBatch(system, batch.body.id);
    expect(progress).toMatchObject({ status: 'processing', counts: { succeeded: 10, failed: 0, queued: 30 } });
    const { body: account } = await callApi(system, 'GET', '/v1/account');
    expect(account.budget).toEqual({
      daily: { limit: 10, used: 10, resets_at: expect.stringMatching(/T00:00:00\.000Z$/) },
      monthly: null,
    });

    await system.services.budgets.setLimits('acme', { daily: 100 });
    const ended = await batchEnded(system, batch.body.id, 60_000);
    expect(ended).toMatchObject({ status: 'completed', counts: { succeeded: 40, failed: 0 }, upstream_calls: 40 });
    expect((await emulatorStats(system)).total).toBe(40 + 3);
    expect((await callApi(system, 'GET', '/v1/account')).body.budget.daily).toMatchObject({ limit: 100, used: 40 });
  }, 120_000);

  it('reuses an earlier result without spending the budget', async () => {
    await system.services.budgets.setLimits('acme', { daily: 40 });
    const before = (await emulatorStats(system)).total;
    // The same bytes as items of the first batch: their results are reused, no call is made.
    const again = await postBatch(system, await photoBatch(5, 70_000));
    const ended = await batchEnded(system, again.body.id, 30_000);
    expect(ended).toMatchObject({ counts: { succeeded: 5 }, credits_saved: 5, upstream_calls: 0 });
    expect((await emulatorStats(system)).total).toBe(before);
    const jobs = await settle(
      system,
      (await batchJobs(system, again.body.id)).map((job) => job.id),
    );
    expect(jobs.every((job) => job.credits_saved === 1)).toBe(true);
  }, 60_000);
});
