import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData, request } from 'undici';
import { createLogger } from '@cutout/shared/infra';
import { makeApiKeyStore } from '../../apps/api/src/auth/api-keys.ts';
import { startWorker } from '../../apps/worker/src/server.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startImageServer, type ImageServer } from '../helpers/batches.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { eventually } from '../helpers/webhooks.ts';
import { makeAnswerChecker, type Answer } from '../helpers/openapi-validator.ts';
import type { Json } from '../helpers/jobs.ts';

/**
 * Drives every operation of the OpenAPI document through the real HTTP server, in its
 * successes and its main refusals, and checks each answer against the document the
 * server serves: status, media type, headers, body.
 */
describe('every operation against the OpenAPI document', () => {
  let system: TestSystem;
  let images: ImageServer;
  let receiver: WebhookReceiver;
  let check: ReturnType<typeof makeAnswerChecker>;
  let document: Json;
  let readOnlyKey: string;
  let closeWorker: (() => Promise<void>) | undefined;
  const answered: { operationId: string; status: number; problems: string[] }[] = [];

  beforeAll(async () => {
    // No worker at first: queued jobs can be canceled and are not finished; one starts later.
    system = await startSystem({ workers: 0, env: { BYBYBG_ALLOWED_OPTIONS: 'size' } });
    images = await startImageServer(8_000);
    receiver = await startWebhookReceiver();
    document = (await (await request(`${system.apiUrl}/openapi.json`)).body.json()) as Json;
    check = makeAnswerChecker(document);
    readOnlyKey = (
      await makeApiKeyStore({ redis: system.services.redis, prefix: system.config.redis.prefix }).create({
        tenantId: system.tenantId,
        scopes: ['jobs:read'],
      })
    ).key;
  });
  afterAll(async () => {
    await closeWorker?.();
    await receiver?.close();
    await images?.close();
    await system?.close();
  });

  type Body = { json: unknown } | { form: FormData } | { raw: string; type: string } | undefined;

  /** One call of `operationId`; its answer is checked against the document and kept for the coverage check. */
  async function call(
    operationId: string,
    method: string,
    path: string,
    {
      body,
      key = system.apiKey,
      headers = {},
    }: { body?: Body; key?: string | null; headers?: Record<string, string> } = {},
  ) {
    const response = await request(`${system.apiUrl}${path}`, {
      method: method as 'GET',
      headers: {
        ...(key ? { 'x-api-key': key } : {}),
        ...headers,
        ...(body && 'json' in body
          ? { 'content-type': 'application/json' }
          : body && 'raw' in body
            ? { 'content-type': body.type }
            : {}),
      },
      body:
        body === undefined
          ? undefined
          : 'json' in body
            ? JSON.stringify(body.json)
            : 'form' in body
              ? body.form
              : body.raw,
    });
    const answer: Answer = { status: response.statusCode, headers: response.headers, text: await response.body.text() };
    answered.push({ operationId, status: answer.status, problems: check(operationId, answer) });
    const json =
      answer.text && String(answer.headers['content-type']).startsWith('application/json')
        ? (JSON.parse(answer.text) as Json)
        : {};
    return { ...answer, json };
  }

  const form = async (variant: number, fields: Record<string, string> = {}) => {
    const data = new FormData();
    for (const [name, value] of Object.entries(fields)) data.append(name, value);
    data.append(
      'file',
      new Blob([await productImage('png', PRODUCT_SHOT, 8_500 + variant)], { type: 'image/png' }),
      `photo-${variant}.png`,
    );
    return data;
  };
  const jobEnded = (id: string) =>
    eventually(
      async () => {
        const { json } = await call('getJob', 'GET', `/v1/jobs/${id}`);
        return ['succeeded', 'failed', 'canceled'].includes(json.status) ? json : undefined;
      },
      { timeoutMs: 60_000, describe: `job ${id} ended` },
    );

  it('answers every operation as the document says', async () => {
    // Public operations.
    await call('getHealth', 'GET', '/healthz', { key: null });
    await call('getReadiness', 'GET', '/readyz', { key: null });
    await call('getMetrics', 'GET', '/metrics', { key: null });

    // The account, and who may see what.
    await call('getAccount', 'GET', '/v1/account');
    await call('getAccount', 'GET', '/v1/account', { key: readOnlyKey });
    await call('getAccount', 'GET', '/v1/account', { key: null });
    await call('getAccount', 'GET', '/v1/account', { key: `ck_live_${'x'.repeat(38)}` });
    await call('getAccountUsage', 'GET', '/v1/account/usage');
    await call('getAccountUsage', 'GET', '/v1/account/usage?from=2026-02-30');

    // Jobs while no worker runs: queued ones.
    const queued = await call('createJob', 'POST', '/v1/jobs', {
      body: { form: await form(1, { webhook_url: receiver.url, metadata: '{"sku":"A-1"}' }) },
    });
    expect(queued.status).toBe(202);
    await call('createJob', 'POST', '/v1/jobs', { body: { form: await form(2) }, key: readOnlyKey });
    await call('createJob', 'POST', '/v1/jobs', {
      body: { form: await form(3, { webhook_url: 'ftp://example.com/hook' }) },
    });
    await call('createJob', 'POST', '/v1/jobs', { body: { form: await form(4, { colour: 'red' }) } });
    await call('createJob', 'POST', '/v1/jobs', {
      body: { json: { image_url: images.url(1), options: { nope: 'x' } } },
    });
    await call('createJob', 'POST', '/v1/jobs', { body: { json: {} } });
    await call('createJob', 'POST', '/v1/jobs', { body: { raw: 'hello', type: 'text/plain' } });
    await call('createJob', 'POST', '/v1/jobs', {
      body: { form: await form(5) },
      headers: { 'idempotency-key': 'two words' },
    });
    const toCancel = await call('createJob', 'POST', '/v1/jobs', { body: { json: { image_url: images.url(2) } } });
    const etag = (await call('getJob', 'GET', `/v1/jobs/${queued.json.id}`)).headers.etag as string;
    await call('getJob', 'GET', `/v1/jobs/${queued.json.id}`, { headers: { 'if-none-match': etag } });
    await call('getJob', 'GET', `/v1/jobs/${queued.json.id}`, { key: system.otherApiKey });
    await call('getJob', 'GET', '/v1/jobs/job_nope');
    await call('listJobs', 'GET', '/v1/jobs?limit=2');
    await call('listJobs', 'GET', '/v1/jobs?status=bogus');
    await call('listJobs', 'GET', '/v1/jobs?cursor=bm9wZQ');
    await call('cancelJob', 'DELETE', `/v1/jobs/${toCancel.json.id}`);
    await call('getJobResult', 'GET', `/v1/jobs/${toCancel.json.id}/result`);
    await call('rerunJob', 'POST', `/v1/jobs/${queued.json.id}/rerun`);
    await call('redeliverJobWebhook', 'POST', `/v1/jobs/${queued.json.id}/webhook/redeliver`);

    // Batches while queued.
    const batch = await call('createBatch', 'POST', '/v1/batches', {
      body: {
        json: {
          items: [
            { image_url: images.url(10), client_ref: 'SKU-10' },
            { image_url: images.plainUrl(11), client_ref: 'PLAIN-11' },
            { image_url: 'ftp://nope' },
          ],
          webhook_url: receiver.url,
        },
      },
    });
    expect(batch.status).toBe(202);
    const manifest = new FormData();
    manifest.append(
      'manifest',
      new Blob([`image_url,client_ref\n${images.url(12)},SKU-12\n`], { type: 'text/csv' }),
      'manifest.csv',
    );
    const fromCsv = await call('createBatch', 'POST', '/v1/batches', { body: { form: manifest } });
    await call('createBatch', 'POST', '/v1/batches', { body: { json: { items: [{ image_url: 'ftp://nope' }] } } });
    await call('createBatch', 'POST', '/v1/batches', { body: { json: { items: [], surprise: 1 } } });
    expect(
      (
        await call('createBatch', 'POST', '/v1/batches?item_events=true', {
          body: { raw: `image_url\n${images.url(13)}\n`, type: 'text/csv' },
        })
      ).status,
    ).toBe(202);
    const lines = await call('createBatch', 'POST', '/v1/batches?dry_run=true', {
      body: { raw: `{"image_url":"${images.url(14)}"}\n`, type: 'application/x-ndjson' },
    });
    expect(lines.json).toMatchObject({ object: 'batch_estimate', items: 1 });
    expect(
      (
        await call('createBatch', 'POST', '/v1/batches?colour=red', {
          body: { raw: `image_url\n${images.url(15)}\n`, type: 'text/csv' },
        })
      ).status,
    ).toBe(400);
    expect(
      (await call('createBatch', 'POST', '/v1/batches', { body: { raw: 'hello', type: 'text/plain' } })).status,
    ).toBe(415);
    await call('redeliverBatchWebhook', 'POST', `/v1/batches/${batch.json.id}/webhook/redeliver`);
    await call('cancelBatch', 'DELETE', `/v1/batches/${fromCsv.json.id}`);

    // Direct uploads: declared, one file PUT, made a batch (a dry run first, which leaves the upload open).
    const photo = await productImage('png', PRODUCT_SHOT, 8_600);
    const upload = await call('createUpload', 'POST', '/v1/uploads', {
      body: { json: { files: [{ name: 'a.png', content_type: 'image/png', bytes: photo.length }] } },
    });
    expect(upload.status).toBe(201);
    await call('createUpload', 'POST', '/v1/uploads', {
      body: { json: { files: [{ name: 'b.gif', content_type: 'image/gif', bytes: 10 }] } },
    });
    await call('createUpload', 'POST', '/v1/uploads', { body: { json: { files: [] } } });
    const [file] = upload.json.files as Json[];
    const put = await request(file!.put_url, { method: 'PUT', body: photo, headers: file!.headers });
    expect(put.statusCode).toBe(200);
    await put.body.dump();
    await call('getUpload', 'GET', `/v1/uploads/${upload.json.id}`);
    await call('getUpload', 'GET', `/v1/uploads/${upload.json.id}`, { key: system.otherApiKey });
    const estimate = await call('createBatch', 'POST', '/v1/batches', {
      body: { json: { upload_id: upload.json.id, dry_run: true } },
    });
    expect(estimate.json).toMatchObject({ object: 'batch_estimate', items: 1 });
    const fromUpload = await call('createBatch', 'POST', '/v1/batches', {
      body: { json: { upload_id: upload.json.id } },
    });
    expect(fromUpload.status).toBe(202);
    expect(
      (await call('createBatch', 'POST', '/v1/batches', { body: { json: { upload_id: upload.json.id } } })).json.error
        .code,
    ).toBe('upload_already_used');
    expect(
      (await call('createBatch', 'POST', '/v1/batches', { body: { json: { upload_id: 'upl_nope' } } })).status,
    ).toBe(404);
    await call('cancelBatch', 'DELETE', `/v1/batches/${fromUpload.json.id}`);

    // Review links.
    await call('createBatchReviewLink', 'POST', `/v1/batches/${batch.json.id}/review-link`, {
      body: { json: { expires_in: 600 } },
    });
    await call('createBatchReviewLink', 'POST', `/v1/batches/${batch.json.id}/review-link`, {
      body: { json: { expires_in: 5 } },
    });
    await call('createBatchReviewLink', 'POST', `/v1/batches/${batch.json.id}/review-link`, { key: readOnlyKey });
    await call('createJobReviewLink', 'POST', `/v1/jobs/${queued.json.id}/review-link`);
    await call('revokeBatchReviewLinks', 'DELETE', `/v1/batches/${batch.json.id}/review-links`);
    await call('revokeJobReviewLinks', 'DELETE', `/v1/jobs/${queued.json.id}/review-links`);
    await call('setJobReview', 'PUT', `/v1/jobs/${queued.json.id}/review`, { body: { json: { verdict: 'rejected' } } });

    // Now a worker: jobs run and end.
    const worker = await startWorker(system.config, createLogger({ level: 'silent', name: 'test' }));
    closeWorker = () => worker.close();
    const waited = await call('createJob', 'POST', '/v1/jobs', {
      body: {
        json: { image_url: images.url(3), renditions: [{ name: 'web', preset: 'web' }], options: { size: 'full' } },
      },
      headers: { prefer: 'wait=30' },
    });
    const done = waited.status === 200 ? waited.json : await jobEnded(waited.json.id);
    expect(done.status).toBe('succeeded');
    await jobEnded(queued.json.id);
    await call('getJobResult', 'GET', `/v1/jobs/${done.id}/result`);
    await call('getJobRendition', 'GET', `/v1/jobs/${done.id}/renditions/web`);
    await call('getJobRendition', 'GET', `/v1/jobs/${done.id}/renditions/nope`);
    await call('cancelJob', 'DELETE', `/v1/jobs/${done.id}`);
    await call('rerunJob', 'POST', `/v1/jobs/${done.id}/rerun`, { body: { json: { options: { size: 'preview' } } } });
    await call('rerunJob', 'POST', `/v1/jobs/${done.id}/rerun`, { body: { json: { metadata: [1] } } });
    await call('setJobReview', 'PUT', `/v1/jobs/${done.id}/review`, {
      body: { json: { verdict: 'rejected', note: 'shadow' } },
    });
    await call('setJobReview', 'PUT', `/v1/jobs/${done.id}/review`, { body: { json: { verdict: 'approved' } } });
    await call('clearJobReview', 'DELETE', `/v1/jobs/${done.id}/review`);
    await call('clearJobReview', 'DELETE', `/v1/jobs/${toCancel.json.id}/review`);

    const ended = await eventually(
      async () => {
        const { json } = await call('getBatch', 'GET', `/v1/batches/${batch.json.id}`);
        return json.status === 'completed' ? json : undefined;
      },
      { timeoutMs: 60_000, describe: 'the batch completed' },
    );
    expect(ended.counts).toMatchObject({ succeeded: 1, failed: 1 });
    await call('getBatch', 'GET', `/v1/batches/${batch.json.id}`, { key: system.otherApiKey });
    await call('getBatchResults', 'GET', `/v1/batches/${batch.json.id}/results`);
    await call('getBatchResults', 'GET', `/v1/batches/${batch.json.id}/results?format=csv`);
    await call('getBatchResults', 'GET', `/v1/batches/${batch.json.id}/results?format=xml`);
    await call('listBatchJobs', 'GET', `/v1/batches/${batch.json.id}/jobs?status=failed`);
    await call('listBatchJobs', 'GET', `/v1/batches/${batch.json.id}/jobs?review=rejected&quality=flagged`);
    await call('rerunBatch', 'POST', `/v1/batches/${batch.json.id}/rerun`, {
      body: { json: { items: 'failed' } },
      headers: { 'idempotency-key': 'rerun-1' },
    });
    await call('rerunBatch', 'POST', `/v1/batches/${batch.json.id}/rerun`, { body: { json: { items: 'rejected' } } });
    await call('rerunBatch', 'POST', `/v1/batches/${batch.json.id}/rerun`, { body: { json: { items: 'everything' } } });

    // Webhooks: the log, attempts, recovery, endpoints.
    await receiver.waitFor(1);
    await call('listJobWebhookAttempts', 'GET', `/v1/jobs/${queued.json.id}/webhook-attempts`);
    await call('redeliverJobWebhook', 'POST', `/v1/jobs/${queued.json.id}/webhook/redeliver`);
    await call('redeliverJobWebhook', 'POST', `/v1/jobs/${done.id}/webhook/redeliver`);
    await call('redeliverBatchWebhook', 'POST', `/v1/batches/${batch.json.id}/webhook/redeliver`);
    await call('listWebhookDeliveries', 'GET', '/v1/webhook-deliveries?limit=5');
    await call('listWebhookDeliveries', 'GET', '/v1/webhook-deliveries?since=yesterday');
    await call('recoverWebhookDeliveries', 'POST', '/v1/webhook-deliveries/recover', {
      body: { json: { since: new Date(Date.now() - 3_600_000).toISOString() } },
    });
    await call('recoverWebhookDeliveries', 'POST', '/v1/webhook-deliveries/recover', { body: { json: {} } });
    await call('listWebhookEndpoints', 'GET', '/v1/webhook-endpoints');
    await call('enableWebhookEndpoint', 'POST', '/v1/webhook-endpoints/enable', {
      body: { json: { url: receiver.url } },
    });
    await call('enableWebhookEndpoint', 'POST', '/v1/webhook-endpoints/enable', {
      body: { json: { url: 'https://never.example.com/hook' } },
    });
    await call('rotateWebhookSecret', 'POST', '/v1/account/webhook-secret/rotate');
    await call('rotateWebhookSecret', 'POST', '/v1/account/webhook-secret/rotate', { key: readOnlyKey });

    const problems = answered.flatMap((entry) => entry.problems);
    expect(problems).toEqual([]);
    const documented = Object.values(document.paths as Record<string, Json>).flatMap((item) =>
      Object.values(item).map((operation) => String(operation.operationId)),
    );
    const succeeded = new Set(answered.filter((entry) => entry.status < 400).map((entry) => entry.operationId));
    expect(documented.filter((operationId) => !succeeded.has(operationId))).toEqual([]);
    const refused = new Set(answered.filter((entry) => entry.status >= 400).map((entry) => entry.operationId));
    expect(refused.size).toBeGreaterThanOrEqual(15);
    expect(system.contractViolations).toEqual([]);
  });
});
