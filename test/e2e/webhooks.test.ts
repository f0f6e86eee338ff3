import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { Webhook } from 'standardwebhooks';
import { newJobId, webhookMessageId } from '@cutout/shared/infra';
import { newWebhookSecret } from '@cutout/shared/stores';
import { signWebhook } from '../../apps/worker/src/webhook-signing.ts';
import { productImage } from '../helpers/images.ts';
import { settle, submitPhotos } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import {
  callApi,
  eventually,
  signedHeaders,
  verifyDelivery,
  webhookAttempts,
  webhookState,
} from '../helpers/webhooks.ts';

const SCHEDULE = ['0', '100ms', '200ms', '400ms', '800ms', '1600ms'];
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Receivers started by a test, closed after it; photos distinct across tests so none is a duplicate. */
function fixtures(getSystem: () => TestSystem, firstVariant: number) {
  const receivers: WebhookReceiver[] = [];
  let variant = firstVariant;
  return {
    async receiver(options?: { port?: number }): Promise<WebhookReceiver> {
      const started = await startWebhookReceiver(options);
      receivers.push(started);
      return started;
    },
    async submit(webhookUrl?: string, system: TestSystem = getSystem()): Promise<string> {
      const fields: Record<string, string> = webhookUrl ? { webhook_url: webhookUrl } : {};
      const [id] = await submitPhotos(system, 1, { firstVariant: variant++, fields });
      return id!;
    },
    async closeReceivers(): Promise<void> {
      await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
    },
  };
}

/** The BullMQ job of the event's first delivery has ended for good: no attempt is left to run. */
async function deliveryGaveUp(system: TestSystem, jobId: string): Promise<{ attemptsMade: number }> {
  return eventually(
    async () => {
      const job = await system.services.queues.webhooks.getJob(webhookMessageId(jobId, 'job.succeeded'));
      return job && (await job.getState()) === 'failed' ? { attemptsMade: job.attemptsMade } : undefined;
    },
    { describe: 'webhook job failed' },
  );
}

describe('webhook delivery', () => {
  let system: TestSystem;
  const { receiver, submit, closeReceivers } = fixtures(() => system, 5_000);

  beforeAll(async () => {
    system = await startSystem({ env: { WEBHOOK_RETRY_SCHEDULE: SCHEDULE.join(','), WEBHOOK_TIMEOUT: '5s' } });
  });
  afterEach(() => closeReceivers());
  afterAll(async () => {
    await system?.close();
  });

  it('signs every delivery so the standardwebhooks library verifies it, and that library rejects a tampered body, a wrong secret and a stale timestamp', async () => {
    const hook = await receiver();
    const jobId = await submit(hook.url);

    const [delivery] = await hook.waitFor(1);
    const { body: account } = await callApi(system, 'GET', '/v1/account');
    const event = verifyDelivery(account.webhook_secret, delivery!);
    expect(event).toMatchObject({
      type: 'job.succeeded',
      timestamp: expect.stringMatching(ISO_TIME),
      data: { id: jobId, status: 'succeeded' },
    });
    expect(delivery!.headers['webhook-id']).toBe(webhookMessageId(jobId, 'job.succeeded'));
    expect(delivery!.headers['content-type']).toBe('application/json');

    const receiverLibrary = new Webhook(account.webhook_secret);
    const headers = signedHeaders(delivery!);
    expect(() => receiverLibrary.verify(delivery!.body.replace('"succeeded"', '"failed"'), headers)).toThrow(
      'No matching signature found',
    );
    expect(() => new Webhook(newWebhookSecret()).verify(delivery!.body, headers)).toThrow(
      'No matching signature found',
    );
    const tenMinutesAgo = new Date(Date.now() - 10 * 60_000);
    const stale = signWebhook([account.webhook_secret], headers['webhook-id']!, tenMinutesAgo, delivery!.body);
    expect(() => receiverLibrary.verify(delivery!.body, stale)).toThrow('Message timestamp too old');
  });

  it('retries a receiver that answers 500 twice and delivers on the third attempt with the same webhook-id', async () => {
    const hook = await receiver();
    hook.answerNext(500, 500);
    hook.respondWith(200);
    const jobId = await submit(hook.url);

    const view = await webhookState(system, jobId, 'delivered');

    expect(view.webhook).toMatchObject({
      attempts: 3,
      last_status_code: 200,
      last_error: null,
      delivered_at: expect.stringMatching(ISO_TIME),
    });
    expect(hook.received).toHaveLength(3);
    expect(new Set(hook.received.map((delivery) => delivery.headers['webhook-id']))).toEqual(
      new Set([webhookMessageId(jobId, 'job.succeeded')]),
    );
    const attempts = await webhookAttempts(system, jobId);
    expect(attempts.map((attempt) => [attempt.status_code, attempt.error])).toEqual([
      [200, null],
      [500, 'receiver answered 500'],
      [500, 'receiver answered 500'],
    ]);
    for (const attempt of attempts) {
      expect(attempt).toMatchObject({
        attempted_at: expect.stringMatching(ISO_TIME),
        event_type: 'job.succeeded',
        webhook_id: webhookMessageId(jobId, 'job.succeeded'),
        duration_ms: expect.any(Number),
      });
    }
  });

  it('delivers once a receiver whose port was closed comes up', async () => {
    const down = await startWebhookReceiver();
    const { port } = down;
    await down.close();
    const jobId = await submit(`http://127.0.0.1:${port}/hook`);

    await eventually(async () => ((await webhookAttempts(system, jobId)).length > 0 ? true : undefined), {
      describe: 'a first attempt',
    });
    const up = await receiver({ port });
    await webhookState(system, jobId, 'delivered');

    expect(up.received).toHaveLength(1);
    expect(up.received[0]!.headers['webhook-id']).toBe(webhookMessageId(jobId, 'job.succeeded'));
    const attempts = await webhookAttempts(system, jobId);
    expect(attempts[0]).toMatchObject({ status_code: 204, error: null });
    expect(attempts.at(-1)).toMatchObject({ status_code: null, error: 'connection failed (ECONNREFUSED)' });
  });

  it('counts a 302 as a failed attempt and never follows the redirect', async () => {
    const target = await receiver();
    const hook = await receiver();
    hook.answerNext({ status: 302, headers: { location: target.url } });
    const jobId = await submit(hook.url);

    const view = await webhookState(system, jobId, 'delivered');

    expect(view.webhook.attempts).toBe(2);
    const attempts = await webhookAttempts(system, jobId);
    expect(attempts.map((attempt) => attempt.status_code)).toEqual([204, 302]);
    expect(attempts[1]!.error).toBe('receiver answered 302; redirects are not followed');
    expect(target.connections()).toBe(0);
  });

  it('stops after one attempt when the receiver answers 410 Gone', async () => {
    const hook = await receiver();
    hook.respondWith(410);
    const jobId = await submit(hook.url);

    const view = await webhookState(system, jobId, 'failed');

    expect(view.webhook).toMatchObject({
      attempts: 1,
      last_status_code: 410,
      last_error: 'endpoint gone (410)',
      delivered_at: null,
    });
    expect(await deliveryGaveUp(system, jobId)).toEqual({ attemptsMade: 1 });
    expect(hook.received).toHaveLength(1);
    expect(await webhookAttempts(system, jobId)).toHaveLength(1);
  });

  it('sends nothing more to an endpoint that answered 410 until a redelivery enables it again', async () => {
    const hook = await receiver();
    hook.respondWith(410);
    await webhookState(system, await submit(hook.url), 'failed');
    hook.respondWith(204);

    const later = await submit(hook.url);
    const skipped = await webhookState(system, later, 'failed');
    expect(skipped.webhook.last_error).toMatch(/410 Gone/);
    expect(hook.received).toHaveLength(1);

    expect((await callApi(system, 'POST', `/v1/jobs/${later}/webhook/redeliver`)).status).toBe(202);
    await webhookState(system, later, 'delivered');
    expect(hook.received).toHaveLength(2);
  });

  it('marks the webhook failed once every attempt of the schedule has failed', async () => {
    const hook = await receiver();
    hook.respondWith(500);
    const jobId = await submit(hook.url);

    const view = await webhookState(system, jobId, 'failed');

    expect(view.webhook).toMatchObject({
      attempts: SCHEDULE.length,
      last_status_code: 500,
      last_error: 'receiver answered 500',
    });
    expect(await deliveryGaveUp(system, jobId)).toEqual({ attemptsMade: SCHEDULE.length });
    expect(hook.received).toHaveLength(SCHEDULE.length);
    expect(await webhookAttempts(system, jobId)).toHaveLength(SCHEDULE.length);
  });

  it('waits at least as long as a 503’s Retry-After before the next attempt', async () => {
    const hook = await receiver();
    hook.answerNext({ status: 503, headers: { 'retry-after': '1' } });
    const jobId = await submit(hook.url);

    await webhookState(system, jobId, 'delivered');

    const [first, second] = hook.received;
    // A lower bound only: the schedule alone would retry after 100 ms.
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(950);
  });

  it('redelivers a delivered event with the same webhook-id, as often as asked', async () => {
    const hook = await receiver();
    const jobId = await submit(hook.url);
    await webhookState(system, jobId, 'delivered');

    const redelivered = await callApi(system, 'POST', `/v1/jobs/${jobId}/webhook/redeliver`);
    expect(redelivered.status).toBe(202);
    expect(redelivered.body).toMatchObject({
      id: jobId,
      status: 'succeeded',
      webhook: { state: 'pending', attempts: 0 },
    });
    await hook.waitFor(2);
    await webhookState(system, jobId, 'delivered');
    expect((await callApi(system, 'POST', `/v1/jobs/${jobId}/webhook/redeliver`)).status).toBe(202);
    const deliveries = await hook.waitFor(3);

    expect(new Set(deliveries.map((delivery) => delivery.headers['webhook-id']))).toEqual(
      new Set([webhookMessageId(jobId, 'job.succeeded')]),
    );
    const { body: account } = await callApi(system, 'GET', '/v1/account');
    expect(verifyDelivery(account.webhook_secret, deliveries[2]!)).toMatchObject({
      type: 'job.succeeded',
      data: { id: jobId },
    });
    await webhookState(system, jobId, 'delivered');
    expect(await webhookAttempts(system, jobId)).toHaveLength(3);
  });

  it('answers 409 job_not_finished to a redelivery of a job that has not ended', async () => {
    const jobId = newJobId();
    await system.services.jobs.create({
      id: jobId,
      tenantId: system.tenantId,
      status: 'queued',
      createdAt: new Date().toISOString(),
      attempts: 0,
      upstreamCalls: 0,
      originalKey: `originals/${system.tenantId}/${jobId}`,
      originalBytes: 1,
      originalContentType: 'image/png',
      webhookUrl: 'http://127.0.0.1:9/hook',
    });

    const { status, body } = await callApi(system, 'POST', `/v1/jobs/${jobId}/webhook/redeliver`);

    expect(status).toBe(409);
    expect(body.error).toMatchObject({ code: 'job_not_finished', request_id: expect.stringMatching(/^req_/) });
  });

  it('answers 409 no_webhook_url to a redelivery of a job submitted without a webhook', async () => {
    const jobId = await submit();
    await settle(system, [jobId]);

    const { status, body } = await callApi(system, 'POST', `/v1/jobs/${jobId}/webhook/redeliver`);

    expect(status).toBe(409);
    expect(body.error.code).toBe('no_webhook_url');
  });

  it('answers 404 for the webhook attempts and redelivery of another tenant’s job', async () => {
    const hook = await receiver();
    const jobId = await submit(hook.url);
    await webhookState(system, jobId, 'delivered');

    const attempts = await callApi(system, 'GET', `/v1/jobs/${jobId}/webhook-attempts`, { key: system.otherApiKey });
    const redeliver = await callApi(system, 'POST', `/v1/jobs/${jobId}/webhook/redeliver`, { key: system.otherApiKey });

    expect([attempts.status, attempts.body.error?.code]).toEqual([404, 'not_found']);
    expect([redeliver.status, redeliver.body.error?.code]).toEqual([404, 'not_found']);
    const own = await callApi(system, 'GET', `/v1/jobs/${jobId}/webhook-attempts`);
    expect(own).toMatchObject({ status: 200, body: { next_cursor: null } });
    expect(own.body.data).toHaveLength(1);
  });

  it.each(['http://10.0.0.1/hook', 'http://169.254.169.254/'])(
    'answers 422 invalid_webhook_url at submission for %s',
    async (webhookUrl) => {
      const form = new FormData();
      form.append('file', new Blob([await productImage('png')], { type: 'image/png' }), 'photo.png');
      form.append('webhook_url', webhookUrl);

      const response = await request(`${system.apiUrl}/v1/jobs`, {
        method: 'POST',
        body: form,
        headers: { 'x-api-key': system.apiKey },
      });
      const body = (await response.body.json()) as { error: { code: string; message: string } };

      expect(response.statusCode).toBe(422);
      expect(body.error.code).toBe('invalid_webhook_url');
      expect(body.error.message).toMatch(/public address/);
    },
  );

  it('signs with the old and the new secret during the grace period after a rotation', async () => {
    const other = { ...system, apiKey: system.otherApiKey };
    const { body: before } = await callApi(other, 'GET', '/v1/account');
    expect(before.previous_webhook_secret_expires_at).toBeNull();

    const rotated = await callApi(other, 'POST', '/v1/account/webhook-secret/rotate');

    expect(rotated.status).toBe(200);
    expect(rotated.body.webhook_secret).toMatch(/^whsec_/);
    expect(rotated.body.webhook_secret).not.toBe(before.webhook_secret);
    expect(Date.parse(rotated.body.previous_secret_expires_at)).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    const { body: after } = await callApi(other, 'GET', '/v1/account');
    expect(after).toMatchObject({
      webhook_secret: rotated.body.webhook_secret,
      previous_webhook_secret_expires_at: rotated.body.previous_secret_expires_at,
    });

    const hook = await receiver();
    const jobId = await submit(hook.url, other);
    const [delivery] = await hook.waitFor(1);
    expect(String(delivery!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifyDelivery(before.webhook_secret, delivery!).data.id).toBe(jobId);
    expect(verifyDelivery(rotated.body.webhook_secret, delivery!).data.id).toBe(jobId);
  });
});

describe('webhook delivery with a short timeout and grace period', () => {
  let system: TestSystem;
  const { receiver, submit, closeReceivers } = fixtures(() => system, 6_000);

  beforeAll(async () => {
    system = await startSystem({
      env: { WEBHOOK_RETRY_SCHEDULE: '0,100ms,200ms', WEBHOOK_TIMEOUT: '300ms', WEBHOOK_SECRET_GRACE: '1s' },
    });
  });
  afterEach(() => closeReceivers());
  afterAll(async () => {
    await system?.close();
  });

  it('aborts an attempt to a receiver that hangs past WEBHOOK_TIMEOUT and retries it', async () => {
    const hook = await receiver();
    hook.answerNext('hang');
    const jobId = await submit(hook.url);

    await webhookState(system, jobId, 'delivered');

    const attempts = await webhookAttempts(system, jobId);
    expect(attempts[0]).toMatchObject({ status_code: 204, error: null });
    expect(attempts.at(-1)).toMatchObject({ status_code: null, error: 'no answer within 300 ms' });
    expect(new Set(hook.received.map((delivery) => delivery.headers['webhook-id'])).size).toBe(1);
  });

  it('signs with the new secret alone once the grace period is over', async () => {
    const { body: before } = await callApi(system, 'GET', '/v1/account');
    const { body: rotated } = await callApi(system, 'POST', '/v1/account/webhook-secret/rotate');
    await sleep(Math.max(0, Date.parse(rotated.previous_secret_expires_at) - Date.now()) + 50);
    expect((await callApi(system, 'GET', '/v1/account')).body.previous_webhook_secret_expires_at).toBeNull();

    const hook = await receiver();
    const jobId = await submit(hook.url);
    const [delivery] = await hook.waitFor(1);

    expect(String(delivery!.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(verifyDelivery(rotated.webhook_secret, delivery!).data.id).toBe(jobId);
    expect(() => verifyDelivery(before.webhook_secret, delivery!)).toThrow('No matching signature found');
  });
});
