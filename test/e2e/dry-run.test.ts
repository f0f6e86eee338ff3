import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData, request } from 'undici';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { emulatorStats, type Json } from '../helpers/jobs.ts';
import { batchEnded, postBatch, startImageServer, type ImageServer } from '../helpers/batches.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { callApi } from '../helpers/webhooks.ts';

/** Everything a submission could leave behind: objects, jobs, batches, Redis keys, usage, ByByBG calls. */
async function footprint(system: TestSystem): Promise<Json> {
  const objects = await system.services.s3.send(new ListObjectsV2Command({ Bucket: system.config.s3.bucket }));
  const { body: jobs } = await callApi(system, 'GET', '/v1/jobs?limit=100');
  const { body: account } = await callApi(system, 'GET', '/v1/account');
  const keys = await system.services.redis.keys(`${system.config.redis.prefix}:*`);
  return {
    objects: objects.KeyCount ?? 0,
    jobs: jobs.data.length,
    batches: keys.filter((key) => key.includes(':batch:')).length,
    idempotency: keys.filter((key) => key.includes('idem')).length,
    usage: account.usage_today,
    upstream: (await emulatorStats(system)).total,
  };
}

const photo = (variant: number) => productImage('png', PRODUCT_SHOT, variant);

async function filesForm(variants: number[], fields: Record<string, string> = {}): Promise<FormData> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const [i, variant] of variants.entries())
    form.append('file', new Blob([await photo(variant)], { type: 'image/png' }), `item-${i}.png`);
  return form;
}

describe('POST /v1/batches with dry_run', () => {
  let system: TestSystem;
  let images: ImageServer;

  beforeAll(async () => {
    system = await startSystem({ env: { BYBYBG_RATE_LIMIT: '50' }, faults: { fixedResult: true } });
    images = await startImageServer(95_000);
    // Two images processed earlier: their results can be reused.
    const earlier = await postBatch(system, await filesForm([900, 901]));
    await batchEnded(system, earlier.body.id, 30_000);
  });
  afterAll(async () => {
    await images?.close();
    await system?.close();
  });

  it('estimates a batch of files without storing or calling anything, and the real batch spends exactly that', async () => {
    const variants = [900, 901, 902, 902, 903];
    const form = await filesForm(variants, { dry_run: 'true' });
    form.append('file', new Blob(['not an image'], { type: 'image/png' }), 'notes.png');
    const before = await footprint(system);

    const { status, body } = await postBatch(system, form, { headers: { 'idempotency-key': 'dry-run-files' } });

    expect(status).toBe(200);
    expect(body).toMatchObject({
      object: 'batch_estimate',
      items: 5,
      duplicates: 3,
      upstream_calls: 2,
      upstream_calls_exact: true,
      url_items: 0,
      note: null,
      rejected: [{ row: 6, reason: expect.stringContaining('unsupported_media_type') }],
      budget_after: { daily: null, monthly: null },
      waiting_reason: null,
    });
    expect(body.eta_seconds).toBe(1); // (nothing queued + 2 calls) at 50 calls/s
    expect(await footprint(system)).toEqual(before);

    const real = await postBatch(system, await filesForm(variants), {
      headers: { 'idempotency-key': 'dry-run-files' },
    });
    expect(real.status).toBe(202);
    const ended = await batchEnded(system, real.body.id, 30_000);
    expect(ended).toMatchObject({
      counts: { succeeded: 5 },
      upstream_calls: body.upstream_calls,
      credits_saved: body.duplicates,
    });
    expect((await emulatorStats(system)).total - before.upstream).toBe(body.upstream_calls);
  }, 60_000);

  it('counts one call per image URL, says why, fetches none, and shows the budget left after it', async () => {
    await system.services.budgets.setLimits('acme', { daily: 100 });
    const used = (await callApi(system, 'GET', '/v1/account')).body.budget.daily.used as number;
    const items = [0, 1, 2].map((n) => ({ image_url: images.url(n) }));
    const before = await footprint(system);

    const { status, body } = await postBatch(system, {
      items: [...items, { image_url: 'ftp://example.com/x.png' }],
      dry_run: true,
    });

    expect(status).toBe(200);
    expect(body).toMatchObject({
      items: 3,
      duplicates: 0,
      upstream_calls: 3,
      upstream_calls_exact: false,
      url_items: 3,
      note: expect.stringContaining('cannot be seen before fetching'),
      budget_after: { daily: { limit: 100, used: used + 3, remaining: 100 - used - 3 }, monthly: null },
    });
    expect(body.rejected).toHaveLength(1);
    expect(images.requests()).toBe(0);
    expect(await footprint(system)).toEqual(before);

    const real = await postBatch(system, { items });
    const ended = await batchEnded(system, real.body.id, 30_000);
    expect(ended.upstream_calls).toBe(3);
    expect((await emulatorStats(system)).total - before.upstream).toBe(3);
    await system.services.budgets.clear('acme');
  }, 60_000);

  it('answers 422 no_valid_items as a real submission would when no item is valid', async () => {
    const { status, body } = await postBatch(system, {
      items: [{ image_url: 'ftp://example.com/x.png' }],
      dry_run: true,
    });
    expect(status).toBe(422);
    expect(body.error).toMatchObject({ code: 'no_valid_items', rejected: [{ row: 1 }] });
  });

  it('refuses a dry_run field sent after a file, storing nothing', async () => {
    const form = await filesForm([904]);
    form.append('dry_run', 'true');
    const before = await footprint(system);
    const { status, body } = await postBatch(system, form);
    expect(status).toBe(400);
    expect(body.error).toMatchObject({
      code: 'invalid_request',
      message: 'Send the dry_run field before the first "file" part',
    });
    expect(await footprint(system)).toEqual(before);
  });

  it('refuses a dry_run that is not true or false', async () => {
    const { status, body } = await postBatch(system, { items: [{ image_url: images.url(5) }], dry_run: 'yes' });
    expect(status).toBe(422);
    expect(body.error.code).toBe('invalid_dry_run');
  });
  it('takes dry_run after 1,200 items of a JSON body: the batch begun for them is gone, nothing else is kept', async () => {
    const items = Array.from({ length: 1_200 }, (_, n) => ({ image_url: images.url(1_000 + n) }));
    const before = await footprint(system);
    const fetched = images.requests();
    // dry_run comes last: by then more than one chunk of items was written.
    const body = JSON.stringify({ items, dry_run: true });
    const response = await request(`${system.apiUrl}/v1/batches`, {
      method: 'POST',
      body,
      headers: { 'x-api-key': system.apiKey, 'content-type': 'application/json', 'idempotency-key': 'late-dry-run' },
    });
    const estimate = (await response.body.json()) as Json;
    expect(response.statusCode).toBe(200);
    expect(estimate).toMatchObject({ object: 'batch_estimate', items: 1_200, upstream_calls: 1_200, url_items: 1_200 });
    expect(await footprint(system)).toEqual(before);
    expect(images.requests()).toBe(fetched);
  }, 60_000);

  it('estimates a CSV manifest sent as the whole body with ?dry_run=true', async () => {
    const csv = `image_url,client_ref\n${images.url(2_001)},A\n${images.url(2_002)},B\nftp://x,C\n`;
    const before = await footprint(system);
    const response = await request(`${system.apiUrl}/v1/batches?dry_run=true`, {
      method: 'POST',
      body: csv,
      headers: { 'x-api-key': system.apiKey, 'content-type': 'text/csv' },
    });
    expect(response.statusCode).toBe(200);
    expect(await response.body.json()).toMatchObject({ object: 'batch_estimate', items: 2, rejected: [{ row: 4 }] });
    expect(await footprint(system)).toEqual(before);
  });

  it('estimates a direct upload without using it up: the real batch takes it afterwards', async () => {
    const bytes = await photo(910);
    const declared = await callApi(system, 'POST', '/v1/uploads', {
      body: {
        files: [
          { name: 'one.png', content_type: 'image/png', bytes: bytes.length },
          { name: 'never.png', content_type: 'image/png', bytes: 10 },
        ],
      },
    });
    expect(declared.status).toBe(201);
    const [file] = declared.body.files as Json[];
    const put = await request(file!.put_url, { method: 'PUT', body: bytes, headers: file!.headers });
    await put.body.dump();
    const before = await footprint(system);
    const { status, body } = await postBatch(system, { upload_id: declared.body.id, dry_run: true });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      items: 1,
      upstream_calls: 1,
      upstream_calls_exact: false,
      rejected: [{ row: 2, reason: expect.stringContaining('upload_missing') }],
    });
    expect(await footprint(system)).toEqual(before);
    expect((await callApi(system, 'GET', `/v1/uploads/${declared.body.id}`)).body).toMatchObject({
      status: 'open',
      batch_id: null,
    });
    const real = await postBatch(system, { upload_id: declared.body.id });
    expect(real.status).toBe(202);
    expect(real.body.counts.queued + real.body.counts.processing + real.body.counts.succeeded).toBe(1);
  });
});
