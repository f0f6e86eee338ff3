import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData, request } from 'undici';
import { createLogger, type Config } from '@cutout/shared/infra';
import { startApi, type RunningApi } from '../../apps/api/src/server.ts';
import { startWorker, type RunningWorker } from '../../apps/worker/src/server.ts';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { emulatorStats, settle, type Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { batchEnded, postBatch, startImageServer, type ImageServer } from '../helpers/batches.ts';
import { callApi } from '../helpers/webhooks.ts';

/** POST /v1/jobs with a photo and `options` as a form field, at `apiUrl`. */
async function postJob(
  system: TestSystem,
  options: unknown,
  { apiUrl = system.apiUrl, variant = 0 }: { apiUrl?: string; variant?: number } = {},
): Promise<{ status: number; body: Json }> {
  const form = new FormData();
  form.append(
    'file',
    new Blob([await productImage('png', PRODUCT_SHOT, 1_400 + variant)], { type: 'image/png' }),
    'a.png',
  );
  form.append('options', JSON.stringify(options));
  const response = await request(`${apiUrl}/v1/jobs`, {
    method: 'POST',
    body: form,
    headers: { 'x-api-key': system.apiKey },
  });
  return { status: response.statusCode, body: (await response.body.json()) as Json };
}

const refusal = (response: { status: number; body: Json }) => [
  response.status,
  response.body.error?.code,
  response.body.error?.message,
];

describe('options ByByBG receives, when the operator allows size', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await startSystem({ env: { BYBYBG_ALLOWED_OPTIONS: 'size' } });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('accepts an allowed option on a job and refuses any other name with 422 invalid_options naming the allowed ones', async () => {
    const accepted = await postJob(system, { size: 'full' });
    expect(accepted.status).toBe(202);
    for (const options of [{ bg_image_url: 'https://example.com/bg.png' }, { size: 'full', crop: 'true' }]) {
      expect(refusal(await postJob(system, options, { variant: 1 }))).toEqual([
        422,
        'invalid_options',
        expect.stringMatching(
          /^option "(bg_image_url|crop)" is not allowed; the options forwarded to ByByBG are: size$/,
        ),
      ]);
    }
    const [view] = await settle(system, [accepted.body.id]);
    expect(view!.status).toBe('succeeded');
  });

  it('refuses an option that is not allowed on a batch, JSON or multipart, and creates nothing', async () => {
    const items = [{ image_url: 'http://127.0.0.1:1/a.png' }];
    const json = await postBatch(system, { items, options: { bg_image_url: 'http://127.0.0.1:1/bg.png' } });
    expect(refusal(json)).toEqual([
      422,
      'invalid_options',
      'option "bg_image_url" is not allowed; the options forwarded to ByByBG are: size',
    ]);
    const form = new FormData();
    form.append('options', '{"format":"jpg"}');
    form.append('manifest', new Blob(['image_url\r\nhttp://127.0.0.1:1/a.png\r\n'], { type: 'text/csv' }), 'm.csv');
    expect((await postBatch(system, form)).body.error.code).toBe('invalid_options');
    expect((await callApi(system, 'GET', '/v1/jobs?limit=100')).body.data.filter((job: Json) => job.batch_id)).toEqual(
      [],
    );
    expect((await postBatch(system, { items, options: { size: 'preview' } })).status).toBe(202);
  });

  it('refuses an option that is not allowed on a rerun of a job or of a batch', async () => {
    const job = await postJob(system, { size: 'full' }, { variant: 2 });
    await settle(system, [job.body.id]);
    const rerun = await callApi(system, 'POST', `/v1/jobs/${job.body.id}/rerun`, {
      body: { options: { bg_color: 'ffffff' } },
    });
    expect(refusal(rerun)).toEqual([
      422,
      'invalid_options',
      'option "bg_color" is not allowed; the options forwarded to ByByBG are: size',
    ]);
    // The options are checked before the items are looked at, so the batch need not have ended.
    const batch = await postBatch(system, { items: [{ image_url: 'http://127.0.0.1:1/a.png' }] });
    const batchRerun = await callApi(system, 'POST', `/v1/batches/${batch.body.id}/rerun`, {
      body: { items: 'failed', options: { bg_color: 'ffffff' } },
    });
    expect([batchRerun.status, batchRerun.body.error?.code]).toEqual([422, 'invalid_options']);
  });
});

describe('options by default', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await startSystem({ workers: 0 });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('forwards none: every option name is refused, saying so', async () => {
    expect(refusal(await postJob(system, { size: 'full' }))).toEqual([
      422,
      'invalid_options',
      'option "size" is not allowed; this deployment forwards no options to ByByBG',
    ]);
    expect((await postJob(system, {})).status).toBe(202);
  });
});

describe('options of jobs queued before the allow-list narrowed', () => {
  let system: TestSystem;
  let images: ImageServer;
  let narrowApi: RunningApi;
  let worker: RunningWorker;

  beforeAll(async () => {
    // The API that queued the jobs allowed bg_color; the worker and a second API now allow size only.
    system = await startSystem({ workers: 0, env: { BYBYBG_ALLOWED_OPTIONS: 'size,bg_color' } });
    images = await startImageServer(1_500);
    const narrowed: Config = { ...system.config, bybybg: { ...system.config.bybybg, allowedOptions: ['size'] } };
    const log = createLogger({ level: system.config.logLevel, name: 'test' });
    narrowApi = await startApi(narrowed, log);
    worker = await startWorker(narrowed, log, { serveMetrics: false });
  });
  afterAll(async () => {
    await worker?.close();
    await narrowApi?.close();
    await images?.close();
    await system?.close();
  });

  it('fails them with invalid_options without calling ByByBG, and a rerun must name new options', async () => {
    const stale = await postJob(system, { bg_color: 'ffffff' }, { variant: 3 });
    const fine = await postJob(system, { size: 'full' }, { variant: 4 });
    expect([stale.status, fine.status]).toEqual([202, 202]);
    const [failed, succeeded] = await settle(system, [stale.body.id, fine.body.id]);
    expect(failed).toMatchObject({
      status: 'failed',
      upstream_calls: 0,
      error: { code: 'invalid_options', retryable: false },
    });
    expect(failed!.error.message).toContain('"bg_color"');
    expect(succeeded!.status).toBe('succeeded');
    expect((await emulatorStats(system)).total).toBe(1);

    const rerunAt = (path: string, body?: Json) =>
      request(`${narrowApi.url}${path}`, {
        method: 'POST',
        body: JSON.stringify(body ?? {}),
        headers: { 'x-api-key': system.apiKey, 'content-type': 'application/json' },
      }).then(async (response) => ({ status: response.statusCode, body: (await response.body.json()) as Json }));
    const inherited = await rerunAt(`/v1/jobs/${stale.body.id}/rerun`);
    expect([inherited.status, inherited.body.error.code]).toEqual([422, 'invalid_options']);
    expect(inherited.body.error.message).toContain('"bg_color"');
    expect((await rerunAt(`/v1/jobs/${stale.body.id}/rerun`, { options: { size: 'full' } })).status).toBe(202);
  });

  it("fails a batch's items the same way, before fetching their images", async () => {
    const before = images.requests();
    const batch = await postBatch(system, {
      items: [{ image_url: images.url(1) }, { image_url: images.url(2) }],
      options: { bg_color: 'ffffff' },
    });
    expect(batch.status).toBe(202);
    const ended = await batchEnded(system, batch.body.id);
    expect(ended.counts).toMatchObject({ total: 2, failed: 2 });
    expect(images.requests()).toBe(before);
    const rerun = await request(`${narrowApi.url}/v1/batches/${batch.body.id}/rerun`, {
      method: 'POST',
      body: JSON.stringify({ items: 'failed' }),
      headers: { 'x-api-key': system.apiKey, 'content-type': 'application/json' },
    });
    expect([rerun.statusCode, ((await rerun.body.json()) as Json).error.code]).toEqual([422, 'invalid_options']);
  });
});
