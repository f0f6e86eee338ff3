import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { callApi } from '../helpers/webhooks.ts';

const ROWS = 100_000;
/** Every 10,000th row is not a usable URL: ten rejected rows. */
const isBad = (i: number) => i % 10_000 === 9_999;
const row = (i: number) =>
  isBad(i)
    ? `not a url,sku-${i},red\r\n`
    : `https://cdn.example.com/catalog/2026/SKU-${String(i).padStart(7, '0')}-front.jpg,sku-${i},red\r\n`;

/** Lines made a slice at a time, never the whole body in this process either. */
function* slices(lines: (i: number) => string, count: number, head = '', tail = ''): Generator<Buffer> {
  yield Buffer.from(head);
  for (let start = 0; start < count; start += 2_000) {
    let text = '';
    for (let i = start; i < Math.min(start + 2_000, count); i++) text += lines(i);
    yield Buffer.from(text);
  }
  yield Buffer.from(tail);
}

async function post(
  system: TestSystem,
  path: string,
  body: Iterable<Buffer>,
  contentType: string,
): Promise<{ status: number; body: Json }> {
  const response = await request(`${system.apiUrl}${path}`, {
    method: 'POST',
    body: Readable.from(body),
    headers: { 'x-api-key': system.apiKey, 'content-type': contentType },
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  return { status: response.statusCode, body: (await response.body.json()) as Json };
}

/** The first `count` lines of the results manifest, without reading the rest. */
async function firstManifestLines(system: TestSystem, batchId: string, count: number): Promise<Json[]> {
  const response = await request(`${system.apiUrl}/v1/batches/${batchId}/results`, {
    headers: { 'x-api-key': system.apiKey },
  });
  const lines: Json[] = [];
  let carry = '';
  for await (const chunk of response.body) {
    const pieces = (carry + chunk.toString()).split('\n');
    carry = pieces.pop()!;
    lines.push(...pieces.map((line) => JSON.parse(line) as Json));
    if (lines.length >= count) break;
  }
  response.body.destroy();
  return lines.slice(0, count);
}

describe('a batch of 100,000 items', () => {
  let system: TestSystem;

  beforeAll(async () => {
    // No worker: every item stays queued, as in a backlog.
    system = await startSystem({ workers: 0 });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('is read from a CSV manifest with exact counts; its status, pages and manifest are served, and it cancels whole', async () => {
    const boundary = 'scaleboundary';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="manifest"; filename="catalog.csv"\r\nContent-Type: text/csv\r\n\r\nimage_url,client_ref,colour\r\n`;
    const created = await post(
      system,
      '/v1/batches',
      slices(row, ROWS, head, `\r\n--${boundary}--\r\n`),
      `multipart/form-data; boundary=${boundary}`,
    );
    expect(created.status).toBe(202);
    expect(created.body.counts).toMatchObject({ total: ROWS - 10, queued: ROWS - 10, rejected: 10 });
    expect(created.body.rejected).toHaveLength(10);
    expect(created.body.rejected[0]).toEqual({ row: 10_001, reason: expect.stringMatching(/^invalid_image_url/) });
    const id = created.body.id as string;

    const status = await callApi(system, 'GET', `/v1/batches/${id}`);
    expect(status.body).toMatchObject({
      status: 'processing',
      counts: { total: ROWS - 10, queued: ROWS - 10, canceled: 0 },
    });
    // Only a window of the items is in the queue; the rest are records until they are needed.
    expect(await system.services.queues.removeBg.count()).toBe(system.config.batches.queueWindow);

    const page = await callApi(system, 'GET', `/v1/batches/${id}/jobs?limit=100`);
    expect(page.body.data.map((job: Json) => job.metadata.colour)).toEqual(Array(100).fill('red'));
    // The last row (99,999) is a bad one: the last item is row 99,998.
    const last = await system.services.batches.itemIds(id, ROWS - 11, 1);
    expect(await system.services.jobs.get(last[0]!)).toMatchObject({
      status: 'queued',
      clientRef: `sku-${ROWS - 2}`,
      batchId: id,
    });

    const lines = await firstManifestLines(system, id, 500);
    expect(lines.map((line) => line.client_ref)).toEqual(Array.from({ length: 500 }, (_, i) => `sku-${i}`));
    expect(lines.every((line) => line.status === 'queued')).toBe(true);

    const canceled = await callApi(system, 'DELETE', `/v1/batches/${id}`);
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({
      status: 'canceled',
      counts: { total: ROWS - 10, queued: 0, canceled: ROWS - 10 },
    });
    expect(canceled.body.completed_at).not.toBeNull();
    expect(await system.services.queues.removeBg.count()).toBe(0);
  }, 300_000);

  it('is read from a JSON body and from a JSON-lines body with exact counts', async () => {
    const item = (i: number) =>
      `${i === 0 ? '' : ','}{"image_url":"https://cdn.example.com/p/${i}.jpg","client_ref":"sku-${i}","metadata":{"row":${i}}}`;
    const json = await post(
      system,
      '/v1/batches',
      slices(item, ROWS, '{"items":[', '],"item_events":false}'),
      'application/json',
    );
    expect([json.status, json.body.counts.total, json.body.rejected]).toEqual([202, ROWS, []]);

    const line = (i: number) => `{"image_url":"https://cdn.example.com/l/${i}.jpg","client_ref":"line-${i}"}\n`;
    const lines = await post(system, '/v1/batches?item_events=false', slices(line, ROWS), 'application/x-ndjson');
    expect([lines.status, lines.body.counts.total]).toEqual([202, ROWS]);
    const records = await system.services.batches.itemIds(lines.body.id, ROWS - 1, 1);
    expect((await system.services.jobs.get(records[0]!))!.clientRef).toBe(`line-${ROWS - 1}`);
  }, 300_000);
});
