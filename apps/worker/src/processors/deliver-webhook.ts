import { UnrecoverableError, type Job } from 'bullmq';
import type { Dispatcher } from 'undici';
import {
  signWebhook, toBatchView, toJobView,
  type BatchStore, type GoneEndpoints, type JobStore, type Logger, type Storage, type TenantStore, type WebhookAttemptLog, type WebhookPayload, type WebhookState,
} from '@cutout/shared';
import { outcomeOfError, outcomeOfResponse, type AttemptOutcome } from '../webhook-outcomes.ts';
import { postWebhook } from '../webhook-sender.ts';

export interface DeliverWebhookDeps {
  jobs: JobStore;
  batches: BatchStore;
  /** Links in batch events (the results manifest) name the API by this. */
  publicBaseUrl: string;
  tenants: TenantStore;
  storage: Storage;
  attempts: WebhookAttemptLog;
  goneEndpoints: GoneEndpoints;
  resultUrlTtlMs: number;
  timeoutMs: number;
  /** The SSRF-guarded agent (createGuardedAgent): required, so no delivery can bypass the guard. */
  dispatcher: Dispatcher;
  log: Logger;
}

/** A failed delivery attempt; `retryAfterMs` lets the backoff honour the receiver's Retry-After. */
export class DeliveryError extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
    this.name = 'DeliveryError';
  }
}

/**
 * Sends one event, signed with the tenant's secrets; the `webhook-id` is the same on every
 * attempt and every redelivery. Each attempt is logged on the job and in its attempt list.
 */
export function makeDeliverWebhookProcessor(deps: DeliverWebhookDeps) {
  const { jobs, tenants, storage, attempts, log } = deps;

  /** Never throws: every way an attempt can end is an outcome, plus the cause when there was no answer. */
  async function attemptDelivery(url: string, body: string, headers: Record<string, string>): Promise<AttemptOutcome & { cause?: unknown }> {
    try {
      return outcomeOfResponse(await postWebhook({ url, body, headers, timeoutMs: deps.timeoutMs, dispatcher: deps.dispatcher }));
    } catch (error) {
      return { ...outcomeOfError(error, deps.timeoutMs), cause: error };
    }
  }

  /** What an event says and where it goes: the job, or for batch events the batch; null once expired. */
  async function eventOf({ jobId, batchId }: WebhookPayload): Promise<{ url: string; timestamp: string; data: unknown } | null> {
    if (batchId) {
      const batch = await deps.batches.get(batchId);
      if (!batch?.webhookUrl) return null;
      const data = toBatchView(batch, { publicBaseUrl: deps.publicBaseUrl });
      return { url: batch.webhookUrl, timestamp: batch.completedAt ?? new Date().toISOString(), data };
    }
    const record = await jobs.get(jobId);
    if (!record?.webhookUrl) return null;
    return { url: record.webhookUrl, timestamp: record.finishedAt ?? new Date().toISOString(), data: await toJobView(record, storage, deps.resultUrlTtlMs) };
  }

  return async function deliverWebhook(job: Job<WebhookPayload>): Promise<void> {
    const { messageId, type, jobId, tenantId, batchId } = job.data;
    const event = await eventOf(job.data);
    if (!event) return log.warn({ job_id: jobId, messageId }, 'webhook dropped: record expired');

    const payload = { type, timestamp: event.timestamp, data: event.data };
    const body = JSON.stringify(payload);
    const headers = signWebhook(await tenants.webhookSecrets(tenantId), messageId, new Date(), body);
    const attempt = job.attemptsMade + 1;
    const lastScheduled = attempt >= (job.opts.attempts ?? 1);
    const attemptLog = log.child({ job_id: jobId, messageId, attempt });

    const started = Date.now();
    const goneSince = await deps.goneEndpoints.goneSince(tenantId, event.url);
    const outcome: AttemptOutcome & { cause?: unknown } = goneSince
      ? { verdict: 'give_up', statusCode: null, error: `endpoint disabled: it answered 410 Gone at ${goneSince}; redeliver to enable it again` }
      : await attemptDelivery(event.url, body, headers);
    if (outcome.statusCode === 410) await deps.goneEndpoints.markGone(tenantId, event.url);
    const durationMs = Date.now() - started;

    const attemptedAt = new Date(started).toISOString();
    const now = new Date().toISOString();
    const state: WebhookState = outcome.verdict === 'delivered' ? 'delivered' : outcome.verdict === 'give_up' || lastScheduled ? 'failed' : 'pending';
    // The attempt first: whoever sees the new state finds the attempt that led to it.
    await attempts.record(jobId, { attemptedAt, eventType: type, webhookId: messageId, statusCode: outcome.statusCode, durationMs, error: outcome.error });
    // A batch's delivery state is its attempt list; only jobs carry a `webhook` field.
    if (!batchId) await jobs.setWebhook(jobId, {
      state,
      attempts: attempt,
      lastStatusCode: outcome.statusCode ?? undefined,
      lastError: outcome.error ?? undefined,
      lastAttemptAt: attemptedAt,
      deliveredAt: outcome.verdict === 'delivered' ? now : undefined,
    });
    // `err` (the network error's code, the guard's refusal) is for operators; clients see `outcome.error`.
    // Neither names a resolved address: the guard logs that at debug level only.
    attemptLog.info({ statusCode: outcome.statusCode, ms: durationMs, outcome: outcome.verdict, state, err: outcome.cause }, 'webhook attempt');

    if (outcome.verdict === 'give_up') throw new UnrecoverableError(outcome.error ?? 'delivery given up');
    if (outcome.verdict === 'retry') throw new DeliveryError(outcome.error ?? 'delivery failed', outcome.retryAfterMs);
  };
}
