import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { emulatorStats, getJob, type Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { eventually } from '../helpers/webhooks.ts';
import { batchEnded, getBatch, postBatch, startImageServer, type ImageServer } from '../helpers/batches.ts';

/** Submits one photo as the other tenant (globex). */
async function submitAsOtherTenant(system: TestSystem, photo: Buffer): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([photo], { type: 'image/png' }), 'photo.png');
  const response = await request(`${system.apiUrl}/v1/jobs`, {
    method: 'POST',
    body: form,
    headers: { 'x-api-key': system.otherApiKey },
  });
  const body = (await response.body.json()) as Json;
  if (response.statusCode !== 202)
    throw new Error(`submission answered ${response.statusCode}: ${JSON.stringify(body)}`);
  return body.id as string;
}

describe('scheduling batches against a slow upstream', () => {
  let system: TestSystem;
  let images: ImageServer;
  let hook: WebhookReceiver;
  const items = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => ({ image_url: images.url(from + i), client_ref: `item-${from + i}` }));

  beforeAll(async () => {
    system = await startSystem({ env: { WORKER_CONCURRENCY: '2' }, faults: { latencyMs: 50, fixedResult: true } });
    images = await startImageServer(40_000);
    hook = await startWebhookReceiver();
  });
  afterAll(async () => {
    await hook?.close();
    await images?.close();
    await system?.close();
  });

  it("runs another tenant's single job before the 100th item of a 2,000-item batch queued ahead of it", async () => {
    const batch = await postBatch(system, { items: items(0, 2000) });
    expect(batch.status).toBe(202);
    const jobId = await submitAsOtherTenant(system, await productImage('png', PRODUCT_SHOT, 39_000));

    const finished = await eventually(
      async () => {
        const job = await getJob({ ...system, apiKey: system.otherApiKey }, jobId);
        return job.status === 'succeeded' ? job : undefined;
      },
      { timeoutMs: 60_000, describe: 'the single job succeeded' },
    );
    const { body: progress } = await getBatch(system, batch.body.id);
    expect(progress.counts.succeeded).toBeLessThan(100);
    expect(Date.parse(finished.finished_at)).toBeGreaterThan(0);

    // Not needed any more: cancel the rest so the next test starts with an empty queue.
    await request(`${system.apiUrl}/v1/batches/${batch.body.id}`, {
      method: 'DELETE',
      headers: { 'x-api-key': system.apiKey },
    }).then((r) => r.body.dump());
    await batchEnded(system, batch.body.id, 60_000);
  }, 90_000);

  it('cancels the items not yet started; started ones finish, counts add up and ByByBG gets no further calls', async () => {
    await request(`${system.emulator.url}/_stats/reset`, { method: 'POST' }).then((r) => r.body.dump());
    const batch = await postBatch(system, { items: items(3000, 300), webhook_url: hook.url });
    await eventually(
      async () => ((await getBatch(system, batch.body.id)).body.counts.succeeded >= 10 ? true : undefined),
      { timeoutMs: 60_000 },
    );

    const response = await request(`${system.apiUrl}/v1/batches/${batch.body.id}`, {
      method: 'DELETE',
      headers: { 'x-api-key': system.apiKey },
    });
    const canceledView = (await response.body.json()) as Json;
    expect(response.statusCode).toBe(200);
    expect(canceledView.status).toBe('canceled');

    const ended = await batchEnded(system, batch.body.id, 60_000);
    const { total, succeeded, failed, canceled, queued, processing } = ended.counts;
    expect(succeeded + failed + canceled).toBe(total);
    expect(queued + processing).toBe(0);
    expect(canceled).toBeGreaterThan(200);
    expect(ended.status).toBe('canceled');

    const settled = await emulatorStats(system);
    expect(settled.total).toBe(ended.upstream_calls);
    await sleep(500);
    expect((await emulatorStats(system)).total).toBe(settled.total);

    const [delivery] = await hook.waitFor(1);
    const event = JSON.parse(delivery!.body) as Json;
    expect(event.type).toBe('batch.completed');
    expect(event.data.counts.canceled).toBe(canceled);
  }, 90_000);
});
