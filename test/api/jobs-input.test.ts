import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { productImage } from '../helpers/images.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { countJobs } from '../helpers/jobs.ts';

const MAX_UPLOAD_BYTES = 20_000;

describe('POST /v1/jobs and GET /v1/jobs/:id with bad input', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await startSystem({ workers: 0, env: { MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES) } });
  });
  afterAll(async () => {
    await system?.close();
  });

  async function post(
    form: FormData | string | undefined,
    headers: Record<string, string> = { 'x-api-key': system.apiKey },
  ) {
    const response = await request(`${system.apiUrl}/v1/jobs`, { method: 'POST', body: form, headers });
    return {
      status: response.statusCode,
      body: (await response.body.json()) as { error?: { code: string; message: string; request_id: string } },
    };
  }

  const withFile = (data: Buffer, name = 'photo.jpg', type = 'image/jpeg') => {
    const form = new FormData();
    form.append('file', new Blob([data], { type }), name);
    return form;
  };

  async function storedOriginals(): Promise<number> {
    const listed = await system.services.s3.send(
      new ListObjectsV2Command({ Bucket: system.config.s3.bucket, Prefix: 'originals/' }),
    );
    return listed.KeyCount ?? 0;
  }

  async function jobCount(): Promise<number> {
    return countJobs(system);
  }

  it('answers 401 missing_api_key without an X-API-KEY header', async () => {
    const result = await post(withFile(await productImage()), {});
    expect(result.status).toBe(401);
    expect(result.body.error).toMatchObject({ code: 'missing_api_key' });
    expect(result.body.error?.request_id).toMatch(/^req_/);
  });

  it('answers 401 invalid_api_key for an unknown key', async () => {
    const result = await post(withFile(await productImage()), { 'x-api-key': 'ck_test_not_a_real_key_000000000000' });
    expect(result.status).toBe(401);
    expect(result.body.error?.code).toBe('invalid_api_key');
  });

  it('answers 400 missing_file when the form has no file part', async () => {
    const form = new FormData();
    form.append('metadata', '{"sku":"A1"}');
    const result = await post(form);
    expect(result.status).toBe(400);
    expect(result.body.error?.code).toBe('missing_file');
  });

  it('answers 400 empty_file for a zero-byte upload and stores nothing', async () => {
    const result = await post(withFile(Buffer.alloc(0)));
    expect(result.status).toBe(400);
    expect(result.body.error?.code).toBe('empty_file');
    expect(await storedOriginals()).toBe(0);
  });

  it('answers 415 for a text file sent as image/png, judged by its bytes', async () => {
    const result = await post(
      withFile(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"></svg>'), 'logo.png', 'image/png'),
    );
    expect(result.status).toBe(415);
    expect(result.body.error?.code).toBe('unsupported_media_type');
    expect(await storedOriginals()).toBe(0);
  });

  it('answers 415 for a body that is not multipart', async () => {
    const response = await request(`${system.apiUrl}/v1/jobs`, {
      method: 'POST',
      body: 'hello',
      headers: { 'x-api-key': system.apiKey, 'content-type': 'text/plain' },
    });
    expect(response.statusCode).toBe(415);
    expect(((await response.body.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
  });

  it('answers 413 file_too_large above MAX_UPLOAD_BYTES and leaves nothing in S3 or Redis', async () => {
    const big = Buffer.concat([await productImage('png'), Buffer.alloc(MAX_UPLOAD_BYTES * 3, 7)]);
    const result = await post(withFile(big, 'big.png', 'image/png'));
    expect(result.status).toBe(413);
    expect(result.body.error?.code).toBe('file_too_large');
    expect(await storedOriginals()).toBe(0);
    expect(await jobCount()).toBe(0);
  });

  it('answers 422 for a webhook_url that is not an http(s) URL and keeps nothing', async () => {
    const form = withFile(await productImage());
    form.append('webhook_url', 'ftp://example.test/hook');
    const result = await post(form);
    expect(result.status).toBe(422);
    expect(result.body.error?.code).toBe('invalid_webhook_url');
    expect(await storedOriginals()).toBe(0);
    expect(await jobCount()).toBe(0);
  });

  it('answers 422 for metadata that is not a JSON object', async () => {
    const form = withFile(await productImage());
    form.append('metadata', '[1,2]');
    const result = await post(form);
    expect(result.status).toBe(422);
    expect(result.body.error?.code).toBe('invalid_metadata');
  });

  it('answers 400 too_many_files for two file parts', async () => {
    const image = await productImage();
    const form = withFile(image);
    form.append('file', new Blob([image], { type: 'image/jpeg' }), 'second.jpg');
    const result = await post(form);
    expect(result.status).toBe(400);
    expect(result.body.error?.code).toBe('too_many_files');
    expect(await storedOriginals()).toBe(0);
  });

  it('answers 404 for an unknown job id', async () => {
    const response = await request(`${system.apiUrl}/v1/jobs/job_doesnotexist000000000000`, {
      headers: { 'x-api-key': system.apiKey },
    });
    expect(response.statusCode).toBe(404);
    expect(((await response.body.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it("answers 404, not 403, for another tenant's job", async () => {
    const created = await post(withFile(await productImage()));
    const { id } = created.body as unknown as { id: string };
    expect(created.status).toBe(202);
    const mine = await request(`${system.apiUrl}/v1/jobs/${id}`, { headers: { 'x-api-key': system.apiKey } });
    expect(mine.statusCode).toBe(200);
    await mine.body.dump();
    const theirs = await request(`${system.apiUrl}/v1/jobs/${id}`, { headers: { 'x-api-key': system.otherApiKey } });
    expect(theirs.statusCode).toBe(404);
    await theirs.body.dump();
  });
});
