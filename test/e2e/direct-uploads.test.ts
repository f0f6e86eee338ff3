import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { uploadPrefix } from '@cutout/shared/stores';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import type { Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { batchEnded, manifest } from '../helpers/batches.ts';
import { callApi, eventually } from '../helpers/webhooks.ts';

/** PUTs `body` to a presigned URL with the headers the upload named (content-length as the body is). */
async function put(file: Json, body: Buffer): Promise<number> {
  const headers = { ...file.headers, 'content-length': String(body.length) };
  const response = await request(file.put_url, { method: 'PUT', body, headers });
  await response.body.dump();
  return response.statusCode;
}

async function storedKeys(system: TestSystem, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of system.services.storage.list(prefix)) keys.push(key);
  return keys;
}

describe('direct uploads', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await startSystem({ env: { MAINTENANCE_INTERVAL: '200ms' } });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('makes the files a client put in S3 a batch: one never uploaded and one of another size are rejected rows, one that is not an image fails like a URL item', async () => {
    const photo = await productImage('png', PRODUCT_SHOT, 91_000);
    const text = Buffer.from('these bytes are not an image, whatever the file is called\n'.repeat(20));
    const declared = [
      { name: 'shoe-1.png', content_type: 'image/png', bytes: photo.length },
      { name: 'never-sent.png', content_type: 'image/png', bytes: 5_000 },
      { name: 'larger.png', content_type: 'image/png', bytes: 1_000 },
      { name: '../../etc/notes.png', content_type: 'image/png', bytes: text.length },
    ];
    const created = await callApi(system, 'POST', '/v1/uploads', { body: { files: declared } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ object: 'upload', id: expect.stringMatching(/^upl_\w{24}$/), status: 'open' });
    expect(Date.parse(created.body.expires_at) - Date.now()).toBeGreaterThan(59 * 60_000);
    const files = created.body.files as Json[];
    expect(files.map((file) => file.name)).toEqual(declared.map((file) => file.name));
    for (const file of files) {
      // Keys are Cutout's own, never built from the client's file names.
      expect(new URL(file.put_url).pathname).not.toMatch(/shoe|etc|notes/);
      expect(new URL(file.put_url).searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
    }
    expect(files[0]!.headers).toEqual({ 'content-type': 'image/png', 'content-length': String(photo.length) });

    expect(await put(files[0]!, photo)).toBe(200);
    // s3rver stores what the signature's Content-Length does not allow (AWS S3 and MinIO answer 403):
    // the size check when the batch is made is the backstop.
    await put(files[2]!, Buffer.alloc(2_000, 1));
    expect(await put(files[3]!, text)).toBe(200);

    const batch = await callApi(system, 'POST', '/v1/batches', {
      body: { upload_id: created.body.id, item_events: false },
    });
    expect(batch.status).toBe(202);
    expect(batch.body.counts).toMatchObject({ total: 2, rejected: 2 });
    expect(batch.body.rejected).toEqual([
      { row: 2, reason: 'upload_missing: never-sent.png was not uploaded' },
      { row: 3, reason: expect.stringMatching(/^upload_(size_mismatch|missing): larger\.png/) },
    ]);

    const ended = await batchEnded(system, batch.body.id, 60_000);
    expect(ended.counts).toMatchObject({ succeeded: 1, failed: 1 });
    const rows = (await manifest(system, batch.body.id)).text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(rows.map((row) => [row.client_ref, row.status, row.error_code])).toEqual([
      ['shoe-1.png', 'succeeded', null],
      ['notes.png', 'failed', 'unsupported_media_type'],
    ]);
    const done = await callApi(system, 'GET', `/v1/jobs/${rows[0]!.job_id}`);
    expect(done.body.input).toEqual({ bytes: photo.length, content_type: 'image/png' });
    // Each item's uploaded object is gone once its original is made (or it was refused).
    expect(await storedKeys(system, uploadPrefix(system.tenantId, created.body.id))).toEqual([]);

    const again = await callApi(system, 'POST', '/v1/batches', { body: { upload_id: created.body.id } });
    expect([again.status, again.body.error.code]).toEqual([409, 'upload_already_used']);
  }, 90_000);

  it('shows which files are in S3 and signs new URLs only for the missing ones', async () => {
    const photo = await productImage('jpeg', PRODUCT_SHOT, 91_100);
    const created = await callApi(system, 'POST', '/v1/uploads', {
      body: {
        files: [
          { name: 'a.jpg', content_type: 'image/jpeg', bytes: photo.length },
          { name: 'b.jpg', content_type: 'image/jpeg', bytes: photo.length },
        ],
      },
    });
    expect(await put(created.body.files[0], photo)).toBe(200);
    const shown = await callApi(system, 'GET', `/v1/uploads/${created.body.id}`);
    expect(shown.status).toBe(200);
    expect(shown.body.files.map((file: Json) => [file.name, file.uploaded, typeof file.put_url])).toEqual([
      ['a.jpg', true, 'undefined'],
      ['b.jpg', false, 'string'],
    ]);
    expect(await put(shown.body.files[1], photo)).toBe(200);
    expect(
      (await callApi(system, 'GET', `/v1/uploads/${created.body.id}`)).body.files.every((file: Json) => file.uploaded),
    ).toBe(true);
    expect((await callApi(system, 'GET', `/v1/uploads/${created.body.id}`, { key: system.otherApiKey })).status).toBe(
      404,
    );
  });

  it("refuses files it would refuse anyway, another tenant's upload and an unknown one", async () => {
    const one = (file: Json) => callApi(system, 'POST', '/v1/uploads', { body: { files: [file] } });
    expect((await one({ name: 'a.gif', content_type: 'image/gif', bytes: 10 })).body.error.code).toBe(
      'unsupported_media_type',
    );
    expect(
      (await one({ name: 'a.png', content_type: 'image/png', bytes: system.config.api.maxUploadBytes + 1 })).body.error
        .code,
    ).toBe('file_too_large');
    expect((await one({ name: 'a.png', content_type: 'image/png', bytes: 0 })).body.error.code).toBe('empty_file');
    expect((await one({ name: 'a.png', content_type: 'image/png', bytes: 10, path: '/x' })).body.error.code).toBe(
      'invalid_request',
    );
    expect((await callApi(system, 'POST', '/v1/uploads', { body: { files: [] } })).body.error.code).toBe(
      'invalid_request',
    );

    const created = await one({ name: 'a.png', content_type: 'image/png', bytes: 10 });
    const stolen = await callApi(system, 'POST', '/v1/batches', {
      key: system.otherApiKey,
      body: { upload_id: created.body.id },
    });
    expect([stolen.status, stolen.body.error.code]).toEqual([404, 'upload_not_found']);
    const unknown = await callApi(system, 'POST', '/v1/batches', { body: { upload_id: 'upl_nothing' } });
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'upload_not_found']);
    const both = await callApi(system, 'POST', '/v1/batches', { body: { upload_id: created.body.id, items: [] } });
    expect([both.status, both.body.error.code]).toEqual([400, 'ambiguous_items']);
    // Nothing was uploaded: every row is rejected, and the upload stays usable.
    const empty = await callApi(system, 'POST', '/v1/batches', { body: { upload_id: created.body.id } });
    expect([empty.status, empty.body.error.code, empty.body.error.rejected]).toEqual([
      422,
      'no_valid_items',
      [{ row: 1, reason: 'upload_missing: a.png was not uploaded' }],
    ]);
  });
});

describe('an expired upload', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await startSystem({ env: { UPLOAD_URL_TTL: '2s', MAINTENANCE_INTERVAL: '200ms' } });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('cannot become a batch, and the sweep deletes its objects and its record', async () => {
    const photo = await productImage('png', PRODUCT_SHOT, 91_200);
    const created = await callApi(system, 'POST', '/v1/uploads', {
      body: { files: [{ name: 'late.png', content_type: 'image/png', bytes: photo.length }] },
    });
    expect(await put(created.body.files[0], photo)).toBe(200);
    const prefix = uploadPrefix(system.tenantId, created.body.id);
    expect(await storedKeys(system, prefix)).toHaveLength(1);

    await eventually(
      async () => ((await callApi(system, 'GET', `/v1/uploads/${created.body.id}`)).status === 404 ? true : undefined),
      { timeoutMs: 15_000, describe: 'the upload swept' },
    );
    expect(await storedKeys(system, prefix)).toEqual([]);
    const batch = await callApi(system, 'POST', '/v1/batches', { body: { upload_id: created.body.id } });
    expect([batch.status, batch.body.error.code]).toEqual([404, 'upload_not_found']);
  });

  it('answers 410 between its expiry and its sweep', async () => {
    const created = await callApi(system, 'POST', '/v1/uploads', {
      body: { files: [{ name: 'x.png', content_type: 'image/png', bytes: 10 }] },
    });
    // Its sweep is held back, as when no worker is running.
    await system.services.redis.zadd(
      `${system.config.redis.prefix}:uploads:sweep`,
      Date.now() + 600_000,
      created.body.id,
    );
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    const batch = await callApi(system, 'POST', '/v1/batches', { body: { upload_id: created.body.id } });
    expect([batch.status, batch.body.error.code]).toEqual([410, 'upload_expired']);
    expect((await callApi(system, 'GET', `/v1/uploads/${created.body.id}`)).body.status).toBe('expired');
  });
});
