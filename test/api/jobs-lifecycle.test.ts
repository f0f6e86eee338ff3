import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { submitPhoto, type Json } from '../helpers/jobs.ts';

async function call(
  system: TestSystem,
  method: 'GET' | 'DELETE' | 'POST',
  path: string,
  headers: Record<string, string> = {},
) {
  const response = await request(`${system.apiUrl}${path}`, {
    method,
    headers: { 'x-api-key': system.apiKey, ...headers },
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: (text ? JSON.parse(text) : null) as Json };
}

function photoForm(photo: Buffer, fields: Record<string, string> = {}) {
  const form = new FormData();
  form.append('file', new Blob([photo], { type: 'image/png' }), 'photo.png');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  return form;
}

async function post(system: TestSystem, form: FormData, headers: Record<string, string> = {}) {
  const response = await request(`${system.apiUrl}/v1/jobs`, {
    method: 'POST',
    body: form,
    headers: { 'x-api-key': system.apiKey, ...headers },
  });
  return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as Json };
}

describe('job queries, cancellation and idempotency without a worker', () => {
  let system: TestSystem;
  const ids: string[] = [];

  beforeAll(async () => {
    system = await startSystem({ workers: 0 });
    for (let i = 0; i < 5; i++) ids.push(await submitPhoto(system, await productImage('png', PRODUCT_SHOT, 400 + i)));
  });
  afterAll(async () => {
    await system?.close();
  });

  it('lists jobs newest first, page by page with a cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await call(system, 'GET', `/v1/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.data.map((job: Json) => job.id));
      cursor = page.body.next_cursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toBe(3);
  });

  it('cancels a queued job, answers the same on a repeat, and filters the list by status', async () => {
    const first = await call(system, 'DELETE', `/v1/jobs/${ids[0]}`);
    expect(first.status).toBe(200);
    expect(first.body.status).toBe('canceled');
    expect((await call(system, 'DELETE', `/v1/jobs/${ids[0]}`)).body.status).toBe('canceled');
    const canceled = await call(system, 'GET', '/v1/jobs?status=canceled');
    expect(canceled.body.data.map((job: Json) => job.id)).toEqual([ids[0]]);
    expect(canceled.body.next_cursor).toBeNull();
  });

  it('refuses a result redirect before the job succeeded', async () => {
    const result = await call(system, 'GET', `/v1/jobs/${ids[1]}/result`);
    expect(result.status).toBe(409);
    expect(result.body.error.code).toBe('result_not_ready');
  });

  it('answers 304 to a poll whose ETag still matches', async () => {
    const first = await call(system, 'GET', `/v1/jobs/${ids[1]}`);
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^W\/"/);
    const again = await request(`${system.apiUrl}/v1/jobs/${ids[1]}`, {
      headers: { 'x-api-key': system.apiKey, 'if-none-match': etag },
    });
    expect(again.statusCode).toBe(304);
    await again.body.dump();
  });

  it('rejects bad list parameters and cursors with 400', async () => {
    expect((await call(system, 'GET', '/v1/jobs?status=done')).status).toBe(400);
    expect((await call(system, 'GET', '/v1/jobs?limit=1000')).status).toBe(400);
    const bad = await call(system, 'GET', '/v1/jobs?cursor=bm9wZQ');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_cursor');
  });

  it('hides every job route of another tenant behind 404', async () => {
    for (const [method, path] of [
      ['GET', `/v1/jobs/${ids[1]}`],
      ['DELETE', `/v1/jobs/${ids[1]}`],
      ['GET', `/v1/jobs/${ids[1]}/result`],
    ] as const) {
      const response = await request(`${system.apiUrl}${path}`, {
        method,
        headers: { 'x-api-key': system.otherApiKey },
      });
      expect(response.statusCode).toBe(404);
      await response.body.dump();
    }
    const theirs = await request(`${system.apiUrl}/v1/jobs`, { headers: { 'x-api-key': system.otherApiKey } });
    expect(((await theirs.body.json()) as Json).data).toEqual([]);
  });

  it('replays the first answer for a repeated Idempotency-Key and creates one job', async () => {
    const photo = await productImage('png', PRODUCT_SHOT, 500);
    const first = await post(system, photoForm(photo), { 'idempotency-key': 'order-42-photo-1' });
    const second = await post(system, photoForm(photo), { 'idempotency-key': 'order-42-photo-1' });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers.location).toBe(first.headers.location);
    expect(second.headers['idempotent-replayed']).toBe('true');
  });

  it('answers 409 idempotency_key_reused when the same key comes with another image', async () => {
    await post(system, photoForm(await productImage('png', PRODUCT_SHOT, 501)), { 'idempotency-key': 'order-43' });
    const reused = await post(system, photoForm(await productImage('png', PRODUCT_SHOT, 502)), {
      'idempotency-key': 'order-43',
    });
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe('idempotency_key_reused');
  });

  it('creates one job for concurrent requests with the same key', async () => {
    const before = (await call(system, 'GET', '/v1/jobs?limit=100')).body.data.length;
    const photo = await productImage('png', PRODUCT_SHOT, 503);
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => post(system, photoForm(photo), { 'idempotency-key': 'burst-1' })),
    );
    const created = new Set(answers.filter((answer) => answer.status === 202).map((answer) => answer.body.id));
    expect(created.size).toBe(1);
    expect(
      answers.every((answer) => answer.status === 202 || answer.body.error?.code === 'idempotency_request_in_progress'),
    ).toBe(true);
    expect((await call(system, 'GET', '/v1/jobs?limit=100')).body.data.length).toBe(before + 1);
  });

  it('answers 400 for an Idempotency-Key longer than 255 characters', async () => {
    const result = await post(system, photoForm(await productImage('png', PRODUCT_SHOT, 504)), {
      'idempotency-key': 'k'.repeat(256),
    });
    expect(result.status).toBe(400);
    expect(result.body.error.code).toBe('invalid_idempotency_key');
  });
});

describe('waiting for a result', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startSystem({ faults: { latencyMs: 200 } });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('answers 200 with the finished job when it ends within Prefer: wait', async () => {
    const created = await post(system, photoForm(await productImage('png', PRODUCT_SHOT, 600)), { prefer: 'wait=20' });
    expect(created.status).toBe(200);
    expect(created.body.status).toBe('succeeded');
    expect(created.headers['preference-applied']).toBe('wait=20');
    const redirect = await request(`${system.apiUrl}/v1/jobs/${created.body.id}/result`, {
      headers: { 'x-api-key': system.apiKey },
    });
    expect(redirect.statusCode).toBe(302);
    await redirect.body.dump();
    const png = await request(String(redirect.headers.location));
    expect(
      Buffer.from(await png.body.arrayBuffer())
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');
  });

  it('holds a status poll with Prefer: wait until the job ends', async () => {
    const id = await submitPhoto(system, await productImage('png', PRODUCT_SHOT, 601));
    const status = await call(system, 'GET', `/v1/jobs/${id}`, { prefer: 'wait=20' });
    expect(status.body.status).toBe('succeeded');
  });

  it('answers 202 when the job is still running at the end of the wait', async () => {
    await request(`${system.emulator.url}/_faults`, {
      method: 'PUT',
      body: JSON.stringify({ latencyMs: 3000 }),
      headers: { 'content-type': 'application/json' },
    });
    const created = await post(system, photoForm(await productImage('png', PRODUCT_SHOT, 602)), { prefer: 'wait=1' });
    expect(created.status).toBe(202);
    expect(['queued', 'processing']).toContain(created.body.status);
  });

  it('refuses to cancel a job that has started, with 409 job_already_started', async () => {
    await request(`${system.emulator.url}/_faults`, {
      method: 'PUT',
      body: JSON.stringify({ latencyMs: 3000 }),
      headers: { 'content-type': 'application/json' },
    });
    const id = await submitPhoto(system, await productImage('png', PRODUCT_SHOT, 603));
    let status = '';
    for (let polls = 0; polls < 200 && status !== 'processing'; polls++) {
      status = (await call(system, 'GET', `/v1/jobs/${id}`)).body.status;
      if (status !== 'processing') await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(status).toBe('processing');
    const cancel = await call(system, 'DELETE', `/v1/jobs/${id}`);
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.code).toBe('job_already_started');
  });
});
