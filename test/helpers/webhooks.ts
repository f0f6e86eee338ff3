import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { Webhook } from 'standardwebhooks';
import { newJobId, webhookMessageId } from '@cutout/shared/infra';
import type { Json } from './jobs.ts';
import type { TestSystem } from './system.ts';
import type { ReceivedWebhook } from './webhook-receiver.ts';

/** Calls the API as the system's tenant (or with `key`), with an optional JSON body; returns status, headers and parsed body. */
export async function callApi(
  system: TestSystem,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  { key = system.apiKey, body }: { key?: string; body?: unknown } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Json }> {
  const response = await request(`${system.apiUrl}${path}`, {
    method,
    headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: text ? (JSON.parse(text) as Json) : {} };
}

/** Polls `probe` until it returns something other than undefined. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  { timeoutMs = 20_000, describe = 'condition' }: { timeoutMs?: number; describe?: string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${describe} not reached within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** The three Standard Webhooks headers of a received delivery. */
export const signedHeaders = (delivery: ReceivedWebhook): Record<string, string> => ({
  'webhook-id': String(delivery.headers['webhook-id']),
  'webhook-timestamp': String(delivery.headers['webhook-timestamp']),
  'webhook-signature': String(delivery.headers['webhook-signature']),
});

/** What a receiver using the reference library does: returns the event, throws when forged or stale. */
export const verifyDelivery = (secret: string, delivery: ReceivedWebhook): Json =>
  new Webhook(secret).verify(delivery.body, signedHeaders(delivery)) as Json;

/**
 * `count` failed jobs of `tenantId` whose `job.failed` events are queued for `webhookUrl` at
 * once, as the worker would after processing them: many deliveries without processing images.
 */
export async function queueFailedJobEvents(
  system: TestSystem,
  webhookUrl: string,
  count: number,
  tenantId = system.tenantId,
): Promise<string[]> {
  const ids = Array.from({ length: count }, () => newJobId());
  const now = new Date().toISOString();
  await Promise.all(
    ids.map(async (id) => {
      await system.services.jobs.create({
        id,
        tenantId,
        status: 'failed',
        createdAt: now,
        finishedAt: now,
        attempts: 1,
        upstreamCalls: 1,
        webhookUrl,
        originalKey: `originals/${tenantId}/${id}`,
        originalBytes: 1,
        originalContentType: 'image/png',
        error: { code: 'upstream_rejected', message: 'rejected', retryable: false },
      });
      await system.services.webhookOutbox.announce({
        messageId: webhookMessageId(id, 'job.failed'),
        type: 'job.failed',
        jobId: id,
        tenantId,
      });
    }),
  );
  return ids;
}

/** Waits until the job's webhook state is `state`; returns the job view. */
export function webhookState(
  system: TestSystem,
  jobId: string,
  state: 'pending' | 'endpoint_failing' | 'delivered' | 'failed',
): Promise<Json> {
  return eventually(
    async () => {
      const { body } = await callApi(system, 'GET', `/v1/jobs/${jobId}`);
      return body.webhook?.state === state ? body : undefined;
    },
    { describe: `webhook of ${jobId} ${state}` },
  );
}

/** The job's delivery attempts as the API lists them, newest first. */
export async function webhookAttempts(system: TestSystem, jobId: string): Promise<Json[]> {
  const { status, body } = await callApi(system, 'GET', `/v1/jobs/${jobId}/webhook-attempts`);
  if (status !== 200) throw new Error(`webhook-attempts answered ${status}: ${JSON.stringify(body)}`);
  return body.data as Json[];
}
