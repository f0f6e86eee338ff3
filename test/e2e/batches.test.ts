import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData, request } from 'undici';
import { Webhook } from 'standardwebhooks';
import { parseCsv } from '../../apps/api/src/intake/csv.ts';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import type { Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { callApi, signedHeaders } from '../helpers/webhooks.ts';
import { batchEnded, getBatch, manifest, postBatch, startImageServer, type ImageServer } from '../helpers/batches.ts';

function csvForm(csv: string, fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append('manifest', new Blob([csv], { type: 'text/csv' }), 'manifest.csv');
  return form;
}

describe('batches of image URLs', () => {
  let system: TestSystem;
  let images: ImageServer;
  let hook: WebhookReceiver;

  beforeAll(async () => {
    system = await startSystem({
      env: { WORKER_CONCURRENCY: '32', BYBYBG_RETRY_DELAY: '50ms', BYBYBG_RATE_LIMIT: '1000' },
      faults: { fixedResult: true },
    });
    images = await startImageServer(20_000);
    hook = await startWebhookReceiver();
  });
  afterAll(async () => {
    await hook?.close();
    await images?.close();
    await system?.close();
  });

  it('processes a 1,000-row CSV manifest, counts every item exactly, lists each result and sends batch.completed once', async () => {
    const rows = Array.from({ length: 1000 }, (_, i) => `${images.url(i)},sku-${i},red`);
    const created = await postBatch(
      system,
      csvForm(`image_url,client_ref,colour\r\n${rows.join('\r\n')}\r\n`, { webhook_url: hook.url }),
    );
    expect(created.status).toBe(202);
    expect(created.body.id).toMatch(/^batch_[0-9A-Za-z]{24}$/);
    expect(created.body.counts.total).toBe(1000);
    expect(created.body.rejected).toEqual([]);
    expect(created.headers.location).toBe(`${system.config.api.publicBaseUrl}/v1/batches/${created.body.id}`);

    const ended = await batchEnded(system, created.body.id);
    expect(ended.status).toBe('completed');
    // The emulator's fixed result is one transparent pixel: every cutout is flagged empty_cutout.
    expect(ended.counts).toEqual({
      total: 1000,
      queued: 0,
      processing: 0,
      succeeded: 1000,
      failed: 0,
      canceled: 0,
      rejected: 0,
      quality_flagged: 1000,
    });
    expect(ended.upstream_calls).toBe(1000);
    expect(ended.completed_at).not.toBeNull();

    const lines = (await manifest(system, created.body.id)).text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(lines).toHaveLength(1000);
    expect(lines.map((line) => line.client_ref)).toEqual(rows.map((_, i) => `sku-${i}`));
    expect(lines.every((line) => line.status === 'succeeded' && /^http/.test(line.result_url))).toBe(true);
    const result = await request(lines[0]!.result_url);
    expect(result.statusCode).toBe(200);
    expect((await result.body.arrayBuffer()).byteLength).toBeGreaterThan(0);

    const { body: account } = await callApi(system, 'GET', '/v1/account');
    const [delivery] = await hook.waitFor(1);
    const event = new Webhook(account.webhook_secret).verify(delivery!.body, signedHeaders(delivery!)) as Json;
    expect(event.type).toBe('batch.completed');
    expect(event.data.id).toBe(created.body.id);
    expect(event.data.counts.succeeded).toBe(1000);
    expect(event.data.results_url).toBe(`${system.config.api.publicBaseUrl}/v1/batches/${created.body.id}/results`);
    // Per-item events were not asked for; the batch event comes once.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(hook.received).toHaveLength(1);
  }, 180_000);

  it('lists rejected rows with their row numbers and reasons and processes the good ones', async () => {
    const csv = [
      'image_url,client_ref',
      `${images.url(2001)},good-1`,
      'ftp://example.com/a.png,bad-scheme',
      ',no-url',
      `${images.url(2002)},good-2`,
      'http://127.0.0.1:1/missing.png,unreachable',
    ].join('\n');
    const created = await postBatch(system, csvForm(csv));
    expect(created.status).toBe(202);
    expect(created.body.rejected).toEqual([
      { row: 3, reason: expect.stringMatching(/^invalid_image_url/) },
      { row: 4, reason: 'image_url is missing' },
    ]);
    expect(created.body.counts).toMatchObject({ total: 3, rejected: 2 });
    const ended = await batchEnded(system, created.body.id);
    expect(ended.counts).toMatchObject({ succeeded: 2, failed: 1 });

    const csvManifest = await manifest(system, created.body.id, 'csv');
    expect(csvManifest.contentType).toMatch(/^text\/csv/);
    const [header, ...data] = parseCsv(csvManifest.text);
    expect(header).toEqual([
      'client_ref',
      'job_id',
      'status',
      'result_url',
      'error_code',
      'error_message',
      'review',
      'quality_flags',
    ]);
    expect(data.map((row) => [row[0], row[2], row[4]])).toEqual([
      ['good-1', 'succeeded', ''],
      ['good-2', 'succeeded', ''],
      ['unreachable', 'failed', 'image_url_unreachable'],
    ]);
  }, 60_000);

  it('answers 422 no_valid_items when every row is bad', async () => {
    const created = await postBatch(system, { items: [{ image_url: 'not a url' }, { nope: 1 }] });
    expect(created.status).toBe(422);
    expect(created.body.error.code).toBe('no_valid_items');
    expect(created.body.error.rejected.map((row: Json) => row.row)).toEqual([1, 2]);
  });

  it('accepts many files in one multipart request, each an item named by its file name', async () => {
    const form = new FormData();
    for (const n of [1, 2])
      form.append(
        'file',
        new Blob([await productImage('png', PRODUCT_SHOT, 23_000 + n)], { type: 'image/png' }),
        `shoe ${n}.png`,
      );
    form.append('file', new Blob(['not an image'], { type: 'text/plain' }), '../notes.txt');
    const created = await postBatch(system, form);
    expect(created.status).toBe(202);
    expect(created.body.rejected).toEqual([{ row: 3, reason: expect.stringMatching(/^unsupported_media_type/) }]);
    await batchEnded(system, created.body.id);
    const jobs = await callApi(system, 'GET', `/v1/jobs?batch_id=${created.body.id}`);
    expect(jobs.body.data.map((job: Json) => [job.client_ref, job.status, job.batch_id])).toEqual([
      ['shoe 1.png', 'succeeded', created.body.id],
      ['shoe 2.png', 'succeeded', created.body.id],
    ]);
  });

  it('sends each item its own job event besides batch.completed when item_events is true', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const created = await postBatch(system, {
        items: [{ image_url: images.url(2200) }, { image_url: images.url(2201) }],
        webhook_url: receiver.url,
        item_events: true,
      });
      expect(created.status).toBe(202);
      const deliveries = await receiver.waitFor(3);
      const types = deliveries.map((delivery) => (JSON.parse(delivery.body) as Json).type).sort();
      expect(types).toEqual(['batch.completed', 'job.succeeded', 'job.succeeded']);
      const jobEvent = deliveries
        .map((delivery) => JSON.parse(delivery.body) as Json)
        .find((event) => event.type === 'job.succeeded')!;
      expect(jobEvent.data.batch_id).toBe(created.body.id);
    } finally {
      await receiver.close();
    }
  });

  it('replays a batch for the same Idempotency-Key and hides it from another tenant', async () => {
    const body = { items: [{ image_url: images.url(2100), client_ref: 'once' }] };
    const first = await postBatch(system, body, { headers: { 'idempotency-key': 'batch-once' } });
    const again = await postBatch(system, body, { headers: { 'idempotency-key': 'batch-once' } });
    expect(again.status).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    expect((await getBatch(system, first.body.id, system.otherApiKey)).status).toBe(404);
    const pages = await callApi(system, 'GET', `/v1/batches/${first.body.id}/jobs?limit=1`);
    expect(pages.body.data).toHaveLength(1);
    expect(pages.body.next_cursor).toBeNull();
  });
});

describe('creating a large batch', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await startSystem({ workers: 0 });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('accepts 10,000 JSON items in one request, queues the first window of them and keeps the rest as records', async () => {
    const items = Array.from({ length: 10_000 }, (_, i) => ({
      image_url: `https://images.example.com/p/${i}.jpg`,
      client_ref: `sku-${i}`,
      metadata: { row: i },
    }));
    const started = performance.now();
    const created = await postBatch(system, { items });
    const ms = Math.round(performance.now() - started);
    expect(created.status).toBe(202);
    expect(created.body.counts).toMatchObject({ total: 10_000, queued: 10_000 });
    // Timing is reported, never asserted (see bench/ for measurements).
    console.info(`created a 10,000-item batch in ${ms} ms`);
    const { body } = await getBatch(system, created.body.id);
    expect(body.counts.queued).toBe(10_000);
    // The rest reach the queue as these start (batch-feeder.ts).
    expect(await system.services.queues.removeBg.count()).toBe(system.config.batches.queueWindow);
    const last = await system.services.batches.itemIds(created.body.id, 9_999, 1);
    expect(await system.services.jobs.get(last[0]!)).toMatchObject({
      status: 'queued',
      clientRef: 'sku-9999',
      metadata: { row: 9_999 },
    });
  }, 60_000);
});
