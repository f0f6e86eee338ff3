import { UnrecoverableError, type Job } from 'bullmq';
import type { Dispatcher } from 'undici';
import { signWebhook, toJobView, type JobStore, type Logger, type Storage, type TenantStore, type WebhookPayload } from '@cutout/shared';
import { postWebhook } from '../webhook-sender.ts';

export interface DeliverWebhookDeps {
  jobs: JobStore;
  tenants: TenantStore;
  storage: Storage;
  resultUrlTtlMs: number;
  timeoutMs: number;
  dispatcher?: Dispatcher;
  log: Logger;
}

/** A failed delivery attempt; `retryAfterMs` lets the backoff honour the receiver's Retry-After. */
export class DeliveryError extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
    this.name = 'DeliveryError';
  }
}

/** Sends one event, signed with the tenant's secrets; the `webhook-id` is the same on every attempt. */
export function makeDeliverWebhookProcessor(deps: DeliverWebhookDeps) {
  const { jobs, tenants, storage, log } = deps;

  return async function deliverWebhook(job: Job<WebhookPayload>): Promise<void> {
    const { messageId, type, jobId, tenantId } = job.data;
    const record = await jobs.get(jobId);
    if (!record?.webhookUrl) return log.warn({ job_id: jobId, messageId }, 'webhook dropped: job record expired');

    const payload = { type, timestamp: record.finishedAt ?? new Date().toISOString(), data: await toJobView(record, storage, deps.resultUrlTtlMs) };
    const body = JSON.stringify(payload);
    const headers = signWebhook(await tenants.webhookSecrets(tenantId), messageId, new Date(), body);
    const attempt = job.attemptsMade + 1;
    const final = attempt >= (job.opts.attempts ?? 1);
    const started = Date.now();
    const attemptLog = log.child({ job_id: jobId, messageId, attempt });

    let statusCode: number | undefined;
    let failure: DeliveryError | undefined;
    try {
      const response = await postWebhook({ url: record.webhookUrl, body, headers, timeoutMs: deps.timeoutMs, dispatcher: deps.dispatcher });
      statusCode = response.statusCode;
      if (statusCode < 200 || statusCode >= 300) failure = new DeliveryError(`receiver answered ${statusCode}`, response.retryAfterMs);
    } catch (error) {
      failure = new DeliveryError(describeNetworkError(error, deps.timeoutMs));
    }

    const now = new Date().toISOString();
    const gone = statusCode === 410;
    await jobs.setWebhook(jobId, {
      state: failure ? (final || gone ? 'failed' : 'pending') : 'delivered',
      attempts: attempt,
      lastStatusCode: statusCode,
      lastError: failure?.message,
      lastAttemptAt: now,
      deliveredAt: failure ? undefined : now,
    });
    attemptLog.info({ statusCode, ms: Date.now() - started, outcome: failure ? 'failed' : 'delivered' }, 'webhook attempt');
    // 410 Gone: the receiver asks us to stop.
    if (gone) throw new UnrecoverableError('receiver answered 410 Gone');
    if (failure) throw failure;
  };
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: string }).name;
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const code = (error as { code?: string }).code;
  return code ? `connection failed (${code})` : 'connection failed';
}
