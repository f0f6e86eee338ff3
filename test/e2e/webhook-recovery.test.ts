import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { webhookMessageId } from '@cutout/shared/infra';
import { postBatch, startImageServer, type ImageServer } from '../helpers/batches.ts';
import type { Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { callApi, eventually, queueFailedJobEvents, webhookAttempts, webhookState } from '../helpers/webhooks.ts';

function fixtures() {
  const receivers: WebhookReceiver[] = [];
  return {
    async receiver(options?: { port?: number }): Promise<WebhookReceiver> {
      const started = await startWebhookReceiver(options);
      receivers.push(started);
      return started;
    },
    /** A URL nothing listens on (yet): the receiver's port, closed. */
    async downUrl(): Promise<{ url: string; port: number }> {
      const down = await startWebhookReceiver();
      await down.close();
      return { url: down.url, port: down.port };
    },
    close: () => Promise.all(receivers.splice(0).map((receiver) => receiver.close())),
  };
}

/** Every entry of the tenant's delivery log matching `query`, following next_cursor. */
async function deliveryLog(system: TestSystem, query: string, key = system.apiKey): Promise<Json[]> {
  const entries: Json[] = [];
  let cursor: string | null = null;
  do {
    const { status, body } = await callApi(
      system,
      'GET',
      `/v1/webhook-deliveries?${query}${cursor ? `&cursor=${cursor}` : ''}`,
      { key },
    );
    if (status !== 200) throw new Error(`webhook-deliveries answered ${status}: ${JSON.stringify(body)}`);
    entries.push(...(body.data as Json[]));
    cursor = body.next_cursor as string | null;
  } while (cursor);
  return entries;
}

const webhookIds = (receiver: WebhookReceiver): string[] =>
  receiver.received.map((request) => String(request.headers['webhook-id']));

describe('recovering webhooks after an outage', () => {
  let system: TestSystem;
  let images: ImageServer;
  const hooks = fixtures();

  beforeAll(async () => {
    // The whole retry schedule takes 300 ms: an outage of a second or two outlasts it, as an hour would the default one.
    system = await startSystem({ env: { WEBHOOK_RETRY_SCHEDULE: '0,100ms,200ms', WEBHOOK_CIRCUIT_THRESHOLD: '3' } });
    images = await startImageServer(9_000);
  });
  afterEach(() => hooks.close());
  afterAll(async () => {
    await images?.close();
    await system?.close();
  });

  it('lists every delivery that failed during the outage and sends each again exactly once, same webhook-id, in one call', async () => {
    const { url, port } = await hooks.downUrl();
    // Failed before the outage window: `since` leaves it out.
    const [earlier] = await queueFailedJobEvents(system, url, 1);
    await webhookState(system, earlier!, 'failed');
    await sleep(5);
    const since = new Date().toISOString();

    const batch = await postBatch(system, {
      items: [0, 1, 2].map((n) => ({ image_url: images.url(n) })),
      webhook_url: url,
      item_events: true,
    });
    expect(batch.status).toBe(202);
    const singles = await queueFailedJobEvents(system, url, 5);
    // Three items' job.succeeded, the batch's batch.completed and five job.failed.
    const failed = await eventually(
      async () => {
        const entries = await deliveryLog(system, `status=failed&since=${since}&limit=4`);
        return entries.length === 9 ? entries : undefined;
      },
      { timeoutMs: 20_000, describe: 'nine failed deliveries' },
    );

    expect(failed.map((entry) => entry.created_at)).toEqual(
      failed
        .map((entry) => entry.created_at)
        .sort()
        .reverse(),
    );
    expect(failed.find((entry) => entry.event_type === 'batch.completed')).toMatchObject({
      object: 'webhook_delivery',
      webhook_id: webhookMessageId(batch.body.id, 'batch.completed'),
      batch_id: batch.body.id,
      job_id: null,
      url,
      state: 'failed',
    });
    for (const id of singles) {
      expect(failed.find((entry) => entry.job_id === id)).toMatchObject({
        webhook_id: webhookMessageId(id, 'job.failed'),
        event_type: 'job.failed',
        batch_id: null,
        next_attempt_at: null,
      });
    }
    expect(failed.some((entry) => entry.job_id === earlier)).toBe(false);

    const up = await hooks.receiver({ port });
    const recovered = await callApi(system, 'POST', '/v1/webhook-deliveries/recover', { body: { since } });
    const again = await callApi(system, 'POST', '/v1/webhook-deliveries/recover', { body: { since } });

    expect(recovered).toMatchObject({
      status: 202,
      body: { object: 'webhook_recovery', since, queued: 9, endpoint_disabled: 0, has_more: false },
    });
    expect(again.body.queued).toBe(0);
    await eventually(
      async () => ((await deliveryLog(system, `status=delivered&since=${since}`)).length === 9 ? true : undefined),
      { describe: 'nine delivered' },
    );
    expect(webhookIds(up).sort()).toEqual(failed.map((entry) => entry.webhook_id).sort());
    expect(await deliveryLog(system, `status=failed&since=${since}`)).toEqual([]);
    expect((await callApi(system, 'GET', `/v1/jobs/${singles[0]}`)).body.webhook).toMatchObject({
      state: 'delivered',
      attempts: 1,
      last_status_code: 204,
    });
  });

  it('lists a URL disabled by a 410, leaves its deliveries out of a recovery, and sends them once it is enabled again', async () => {
    const hook = await hooks.receiver();
    hook.respondWith(410);
    const since = new Date().toISOString();
    const [jobId] = await queueFailedJobEvents(system, hook.url, 1);
    await webhookState(system, jobId!, 'failed');

    const listed = (await callApi(system, 'GET', '/v1/webhook-endpoints?limit=100')).body.data as Json[];
    expect(listed.find((endpoint) => endpoint.url === hook.url)).toMatchObject({
      object: 'webhook_endpoint',
      state: 'disabled',
      disabled_at: expect.any(String),
    });
    const skipped = await callApi(system, 'POST', '/v1/webhook-deliveries/recover', { body: { since } });
    expect(skipped.body).toMatchObject({ queued: 0, endpoint_disabled: 1, has_more: false });

    hook.respondWith(204);
    const enabled = await callApi(system, 'POST', '/v1/webhook-endpoints/enable', { body: { url: hook.url } });
    expect(enabled).toMatchObject({ status: 200, body: { url: hook.url, state: 'enabled', disabled_at: null } });
    const recovered = await callApi(system, 'POST', '/v1/webhook-deliveries/recover', { body: { since } });

    expect(recovered.body).toMatchObject({ queued: 1, endpoint_disabled: 0 });
    await webhookState(system, jobId!, 'delivered');
    expect(webhookIds(hook)).toEqual([webhookMessageId(jobId!, 'job.failed'), webhookMessageId(jobId!, 'job.failed')]);
  });

  it('sends batch.completed again on a batch redelivery, with the same webhook-id', async () => {
    const hook = await hooks.receiver();
    const batch = await postBatch(system, { items: [{ image_url: images.url(10) }], webhook_url: hook.url });
    await hook.waitFor(1);
    const completedId = webhookMessageId(batch.body.id, 'batch.completed');
    await eventually(async () =>
      (await deliveryLog(system, 'status=delivered')).some((entry) => entry.webhook_id === completedId)
        ? true
        : undefined,
    );

    const redelivered = await callApi(system, 'POST', `/v1/batches/${batch.body.id}/webhook/redeliver`);

    expect(redelivered).toMatchObject({
      status: 202,
      body: {
        object: 'webhook_delivery',
        webhook_id: completedId,
        event_type: 'batch.completed',
        batch_id: batch.body.id,
        state: 'pending',
        attempts: 0,
      },
    });
    const deliveries = await hook.waitFor(2);
    expect(deliveries.map((delivery) => delivery.headers['webhook-id'])).toEqual([completedId, completedId]);
    expect(JSON.parse(deliveries[1]!.body)).toMatchObject({
      type: 'batch.completed',
      data: { id: batch.body.id, status: 'completed' },
    });
  });

  it('pages the delivery log newest first, and keeps each tenant to its own', async () => {
    const hook = await hooks.receiver();
    const since = new Date().toISOString();
    const ids = await queueFailedJobEvents(system, hook.url, 5, 'globex');
    await hook.waitFor(5);

    const first = await callApi(system, 'GET', `/v1/webhook-deliveries?since=${since}&limit=2`, {
      key: system.otherApiKey,
    });
    const all = await eventually(async () => {
      const entries = await deliveryLog(system, `since=${since}&status=delivered&limit=2`, system.otherApiKey);
      return entries.length === 5 ? entries : undefined;
    });

    expect(first.body.data).toHaveLength(2);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    expect(all.map((entry) => entry.job_id).sort()).toEqual([...ids].sort());
    const created = all.map((entry) => Date.parse(entry.created_at));
    expect(created).toEqual([...created].sort((a, b) => b - a));
    expect(await deliveryLog(system, `since=${since}`)).toEqual([]);
  });

  it('answers 400 for a bad status, since or cursor, and 404 for what is not the tenant\u2019s', async () => {
    const bad = async (method: 'GET' | 'POST', path: string, body?: unknown, key = system.apiKey) => {
      const { status, body: answer } = await callApi(system, method, path, { body, key });
      return [status, answer.error?.code];
    };

    expect(await bad('GET', '/v1/webhook-deliveries?status=lost')).toEqual([400, 'invalid_request']);
    expect(await bad('GET', '/v1/webhook-deliveries?since=yesterday')).toEqual([400, 'invalid_request']);
    expect(await bad('GET', '/v1/webhook-deliveries?since=2026-11-26T15:00:00')).toEqual([400, 'invalid_request']);
    expect(await bad('GET', '/v1/webhook-deliveries?cursor=bm9wZQ')).toEqual([400, 'invalid_cursor']);
    expect(await bad('GET', '/v1/webhook-deliveries?limit=1000')).toEqual([400, 'invalid_request']);
    expect(await bad('POST', '/v1/webhook-deliveries/recover', {})).toEqual([400, 'invalid_request']);
    expect(await bad('POST', '/v1/webhook-deliveries/recover', { since: 'last tuesday' })).toEqual([
      400,
      'invalid_request',
    ]);
    expect(await bad('POST', '/v1/webhook-endpoints/enable', {})).toEqual([400, 'invalid_request']);
    expect(await bad('POST', '/v1/webhook-endpoints/enable', { url: 'ftp://hooks.example.com/in' })).toEqual([
      422,
      'invalid_webhook_url',
    ]);
    expect(await bad('POST', '/v1/webhook-endpoints/enable', { url: 'https://never-used.example.com/in' })).toEqual([
      404,
      'not_found',
    ]);
    const hook = await hooks.receiver();
    const batch = await postBatch(system, { items: [{ image_url: images.url(11) }], webhook_url: hook.url });
    expect(await bad('POST', `/v1/batches/${batch.body.id}/webhook/redeliver`, undefined, system.otherApiKey)).toEqual([
      404,
      'not_found',
    ]);
  });
});

describe('redelivery without amplification', () => {
  let system: TestSystem;
  const hooks = fixtures();

  beforeAll(async () => {
    system = await startSystem({
      env: { WEBHOOK_RETRY_SCHEDULE: '0,100ms,200ms', WEBHOOK_TIMEOUT: '300ms', WEBHOOK_REDELIVERIES_PER_MINUTE: '3' },
    });
  });
  afterEach(() => hooks.close());
  afterAll(async () => {
    await system?.close();
  });

  it('sends one delivery for two quick redeliver calls: the second answers 202 with the pending one', async () => {
    const hook = await hooks.receiver();
    const [jobId] = await queueFailedJobEvents(system, hook.url, 1);
    await webhookState(system, jobId!, 'delivered');
    // The redelivery's first attempt hangs, so it is surely pending when the second call comes.
    hook.answerNext('hang');

    const first = await callApi(system, 'POST', `/v1/jobs/${jobId}/webhook/redeliver`);
    await hook.waitFor(2);
    const second = await callApi(system, 'POST', `/v1/jobs/${jobId}/webhook/redeliver`);

    expect(first).toMatchObject({ status: 202, body: { webhook: { state: 'pending', attempts: 0 } } });
    expect(second).toMatchObject({ status: 202, body: { id: jobId, webhook: { state: 'pending' } } });
    await webhookState(system, jobId!, 'delivered');
    // Long enough for a second delivery, had one been queued, to have made its own attempts too.
    await sleep(700);
    // The first delivery, the redelivery's attempt that timed out and its retry: no second redelivery.
    expect(webhookIds(hook)).toEqual(Array(3).fill(webhookMessageId(jobId!, 'job.failed')));
    expect((await webhookAttempts(system, jobId!)).map((attempt) => attempt.status_code)).toEqual([204, null, 204]);
  });

  it('counts every redeliver call against the tenant\u2019s allowance, one that found a delivery pending too', async () => {
    // Not at the end of a minute: the allowance is counted per minute.
    const leftInMinute = 60_000 - (Date.now() % 60_000);
    if (leftInMinute < 3_000) await sleep(leftInMinute + 50);
    const hook = await hooks.receiver();
    hook.respondWith('hang');
    const other = { ...system, apiKey: system.otherApiKey };
    const [jobId] = await queueFailedJobEvents(system, hook.url, 1, 'globex');
    await hook.waitFor(1);

    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await callApi(other, 'POST', `/v1/jobs/${jobId}/webhook/redeliver`));

    expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 429]);
    expect(answers[3]!.body.error).toMatchObject({
      code: 'rate_limited',
      message: expect.stringContaining('WEBHOOK_REDELIVERIES_PER_MINUTE'),
    });
    expect(Number(answers[3]!.headers['retry-after'])).toBeGreaterThan(0);
    // Every call found the first delivery still pending: it alone holds the event, no redelivery was queued.
    expect(await system.services.queues.webhooks.getDeduplicationJobId(webhookMessageId(jobId!, 'job.failed'))).toBe(
      webhookMessageId(jobId!, 'job.failed'),
    );
  });
});
