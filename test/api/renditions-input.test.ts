import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { postBatch, startImageServer, type ImageServer } from '../helpers/batches.ts';
import type { Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { countJobs } from '../helpers/jobs.ts';

const MAX_UPLOAD_BYTES = 40_000;
const BAD = JSON.stringify([
  { name: 'amazon', preset: 'marketplace' },
  { name: 'thumb', format: 'gif' },
]);
const BAD_MESSAGE = 'renditions[1] ("thumb").format: must be "png", "webp" or "jpeg"';

describe('renditions refused before anything is stored', () => {
  let system: TestSystem;
  let images: ImageServer;

  beforeAll(async () => {
    system = await startSystem({ workers: 0, env: { MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES) } });
    images = await startImageServer();
  });
  afterAll(async () => {
    await images?.close();
    await system?.close();
  });

  async function post(path: string, body: FormData | Json): Promise<{ status: number; body: Json }> {
    const json = !(body instanceof FormData);
    const response = await request(`${system.apiUrl}${path}`, {
      method: 'POST',
      body: json ? JSON.stringify(body) : body,
      headers: { 'x-api-key': system.apiKey, ...(json ? { 'content-type': 'application/json' } : {}) },
    });
    return { status: response.statusCode, body: (await response.body.json()) as Json };
  }

  async function stored(): Promise<{ objects: number; jobs: number; queued: number }> {
    const listed = await system.services.s3.send(new ListObjectsV2Command({ Bucket: system.config.s3.bucket }));
    return {
      objects: listed.KeyCount ?? 0,
      jobs: await countJobs(system),
      queued: await system.services.queues.removeBg.count(),
    };
  }

  const photo = () => productImage('png', PRODUCT_SHOT, 700);
  const fileBlob = (data: Buffer) => new Blob([data], { type: 'image/png' });

  function expectRefused(result: { status: number; body: Json }, message = BAD_MESSAGE) {
    expect(result.status).toBe(422);
    expect(result.body.error).toMatchObject({
      code: 'invalid_renditions',
      message,
      request_id: expect.stringMatching(/^req_/),
    });
  }

  it('refuses a job whose renditions field comes before the file, before the upload streams', async () => {
    const before = await stored();
    const form = new FormData();
    form.append('renditions', BAD);
    // Larger than MAX_UPLOAD_BYTES: had the upload started, the answer would be 413 file_too_large.
    form.append('file', fileBlob(Buffer.concat([await photo(), Buffer.alloc(MAX_UPLOAD_BYTES * 2, 1)])), 'big.png');
    expectRefused(await post('/v1/jobs', form));
    expect(await stored()).toEqual(before);
  });

  it('refuses a job whose renditions field comes after the file, and deletes the stored original', async () => {
    const before = await stored();
    const form = new FormData();
    form.append('file', fileBlob(await photo()), 'photo.png');
    form.append('renditions', BAD);
    expectRefused(await post('/v1/jobs', form));
    expect(await stored()).toEqual(before);
  });

  it('refuses renditions that are not JSON, not an array, or too many', async () => {
    const before = await stored();
    for (const [renditions, message] of [
      ['marketplace', 'renditions must be a JSON array of rendition specs'],
      ['{"name":"a"}', 'renditions must be a JSON array of rendition specs'],
      [JSON.stringify(Array.from({ length: 9 }, (_, i) => ({ name: `r${i}` }))), 'renditions may hold at most 8 specs'],
    ] as const) {
      const form = new FormData();
      form.append('file', fileBlob(await photo()), 'photo.png');
      form.append('renditions', renditions);
      expectRefused(await post('/v1/jobs', form), message);
    }
    expect(await stored()).toEqual(before);
  });

  it('refuses a JSON job with bad renditions without fetching its image_url', async () => {
    const before = await stored();
    const fetched = images.requests();
    expectRefused(await post('/v1/jobs', { image_url: images.url(1), renditions: JSON.parse(BAD) }));
    expect(images.requests()).toBe(fetched);
    expect(await stored()).toEqual(before);
  });

  it('refuses a batch with bad batch-wide renditions, in JSON and in a form before or after its files', async () => {
    const before = await stored();
    expectRefused(await post('/v1/batches', { items: [{ image_url: images.url(2) }], renditions: JSON.parse(BAD) }));
    for (const fieldFirst of [true, false]) {
      const form = new FormData();
      if (fieldFirst) form.append('renditions', BAD);
      form.append('file', fileBlob(await productImage('png', PRODUCT_SHOT, 701)), 'a.png');
      form.append('file', fileBlob(await productImage('png', PRODUCT_SHOT, 702)), 'b.png');
      if (!fieldFirst) form.append('renditions', BAD);
      expectRefused(await postBatch(system, form));
    }
    expect(await stored()).toEqual(before);
  });

  it('refuses a job rerun or a batch rerun with bad renditions and keeps nothing', async () => {
    const form = new FormData();
    form.append('file', fileBlob(await photo()), 'photo.png');
    const created = await post('/v1/jobs', form);
    expect(created.status).toBe(202);
    // A canceled job has ended, so it can be rerun.
    const canceled = await request(`${system.apiUrl}/v1/jobs/${created.body.id}`, {
      method: 'DELETE',
      headers: { 'x-api-key': system.apiKey },
    });
    await canceled.body.dump();
    const batch = await post('/v1/batches', { items: [{ image_url: images.url(3) }] });
    expect(batch.status).toBe(202);
    const before = await stored();
    expectRefused(await post(`/v1/jobs/${created.body.id}/rerun`, { renditions: JSON.parse(BAD) }));
    expectRefused(await post(`/v1/batches/${batch.body.id}/rerun`, { items: 'failed', renditions: JSON.parse(BAD) }));
    expect(await stored()).toEqual(before);
  });

  it('accepts good renditions and shows none until the job succeeded', async () => {
    const form = new FormData();
    form.append('renditions', JSON.stringify([{ name: 'amazon', preset: 'marketplace' }]));
    form.append('file', fileBlob(await productImage('png', PRODUCT_SHOT, 703)), 'photo.png');
    const created = await post('/v1/jobs', form);
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ status: 'queued', renditions: null, quality: null });
    const record = await system.services.jobs.get(created.body.id);
    expect(record?.renditionPlans).toEqual([
      {
        name: 'amazon',
        format: 'jpeg',
        quality: 90,
        background: '#ffffff',
        crop: 'subject',
        padding: 0.075,
        canvas: 'square',
        maxSize: null,
        minSize: 1000,
      },
    ]);
    const rendition = await request(`${system.apiUrl}/v1/jobs/${created.body.id}/renditions/amazon`, {
      headers: { 'x-api-key': system.apiKey },
    });
    expect(rendition.statusCode).toBe(409);
    expect(((await rendition.body.json()) as Json).error.code).toBe('result_not_ready');
    const unknown = await request(`${system.apiUrl}/v1/jobs/${created.body.id}/renditions/web`, {
      headers: { 'x-api-key': system.apiKey },
    });
    expect(unknown.statusCode).toBe(404);
    await unknown.body.dump();
  });
});
