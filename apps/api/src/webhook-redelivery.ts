import type { Queue } from 'bullmq';
import {
  enqueueWebhook, finalWebhookEvent, redeliveryJobId, TERMINAL_STATUSES, webhookMessageId,
  type GoneEndpoints, type JobRecord, type JobStore, type WebhookDelivery, type WebhookPayload,
} from '@cutout/shared';
import { ApiError } from './errors.ts';

export interface RedeliveryDeps { jobs: JobStore; webhooks: Queue<WebhookPayload>; webhookAttempts: number; goneEndpoints: GoneEndpoints }

/**
 * Sends a finished job's final event again, with the same `webhook-id` (receivers that
 * already processed it deduplicate), on a full retry schedule of its own. A delivery of
 * the event that is still retrying carries on beside it. Returns the record as it now is.
 */
export async function redeliverWebhook({ jobs, webhooks, webhookAttempts, goneEndpoints }: RedeliveryDeps, record: JobRecord): Promise<JobRecord> {
  if (!TERMINAL_STATUSES.includes(record.status)) {
    throw new ApiError('job_not_finished', 'The job has not ended yet; its webhook is sent when it does');
  }
  if (!record.webhookUrl) throw new ApiError('no_webhook_url', 'The job was submitted without a webhook_url');
  const type = finalWebhookEvent(record.status);
  if (!type) throw new ApiError('no_webhook_event', `A ${record.status} job sends no webhook`);

  const messageId = webhookMessageId(record.id, type);
  // Asking for a redelivery is the tenant saying the endpoint is back after a 410.
  await goneEndpoints.enable(record.tenantId, record.webhookUrl);
  // The last attempt's status and error stay visible until the new delivery's first attempt.
  const pending: WebhookDelivery = { ...record.webhook, state: 'pending', attempts: 0, deliveredAt: undefined };
  // Pending before enqueueing, so a fast first attempt's outcome is never overwritten by it.
  await jobs.setWebhook(record.id, pending);
  try {
    await enqueueWebhook(webhooks, { messageId, type, jobId: record.id, tenantId: record.tenantId }, webhookAttempts, { bullJobId: redeliveryJobId(messageId) });
  } catch (error) {
    if (record.webhook) await jobs.setWebhook(record.id, record.webhook).catch(() => undefined);
    throw error;
  }
  return { ...record, webhook: pending };
}
