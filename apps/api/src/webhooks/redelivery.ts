import { finalWebhookEvent, webhookMessageId, type WebhookPayload } from '@cutout/shared/infra';
import {
  endpointIdOf,
  type BatchRecord,
  type DeliveryRecord,
  type EndpointGate,
  type GoneEndpoints,
  type JobRecord,
  type JobStore,
  type WebhookDelivery,
  type WebhookDeliveryLog,
  type WebhookOutbox,
} from '@cutout/shared/stores';
import { isTerminal } from '@cutout/shared/views';
import { ApiError } from '../http/errors.ts';

export interface RedeliveryDeps {
  jobs: JobStore;
  outbox: WebhookOutbox;
  deliveries: WebhookDeliveryLog;
  goneEndpoints: GoneEndpoints;
  gate: EndpointGate;
}

/**
 * Asking for a redelivery is the tenant saying the endpoint is back: a URL disabled by a 410
 * is enabled again, and an open circuit lets its next delivery probe now instead of after
 * its cool-down (one probe still; it closes the circuit only if the endpoint answers).
 */
async function endpointIsBack(
  { goneEndpoints, gate, outbox }: Pick<RedeliveryDeps, 'goneEndpoints' | 'gate' | 'outbox'>,
  tenantId: string,
  url: string,
): Promise<void> {
  await goneEndpoints.enable(tenantId, url);
  await outbox.wake(await gate.probeNow(endpointIdOf(tenantId, url)));
}

/**
 * Sends a finished job's final event again, with the same `webhook-id` (receivers that
 * already processed it deduplicate), on a full retry schedule of its own. While a delivery
 * of the event is pending, nothing more is queued: that delivery is attempted now if it was
 * waiting, and the job is returned as it is (a second quick call sends nothing twice).
 * Returns the record as it now is.
 */
export async function redeliverWebhook(deps: RedeliveryDeps, record: JobRecord): Promise<JobRecord> {
  if (!isTerminal(record.status)) {
    throw new ApiError('job_not_finished', 'The job has not ended yet; its webhook is sent when it does');
  }
  if (!record.webhookUrl) throw new ApiError('no_webhook_url', 'The job was submitted without a webhook_url');
  const type = finalWebhookEvent(record.status);
  if (!type) throw new ApiError('no_webhook_event', `A ${record.status} job sends no webhook`);

  const event: WebhookPayload = {
    messageId: webhookMessageId(record.id, type),
    type,
    jobId: record.id,
    tenantId: record.tenantId,
  };
  await endpointIsBack(deps, record.tenantId, record.webhookUrl);
  // The last attempt's status and error stay visible until the new delivery's first attempt.
  const pending: WebhookDelivery = {
    ...record.webhook,
    state: 'pending',
    attempts: 0,
    deliveredAt: undefined,
    nextAttemptAt: undefined,
  };
  let shownPending = false;
  try {
    const { queued } = await deps.outbox.redeliver(event, {
      beforeQueue: async () => {
        await deps.jobs.setWebhook(record.id, pending);
        shownPending = true;
      },
    });
    return queued ? { ...record, webhook: pending } : ((await deps.jobs.get(record.id)) ?? record);
  } catch (error) {
    if (shownPending && record.webhook) await deps.jobs.setWebhook(record.id, record.webhook).catch(() => undefined);
    throw error;
  }
}

/** Sends a batch's `batch.completed` again, as `redeliverWebhook` does for a job; returns its delivery log entry. */
export async function redeliverBatchWebhook(deps: RedeliveryDeps, batch: BatchRecord): Promise<DeliveryRecord> {
  if (batch.ended < batch.total)
    throw new ApiError(
      'batch_not_finished',
      'The batch has items that have not ended; batch.completed is sent when they have',
    );
  if (!batch.webhookUrl) throw new ApiError('no_webhook_url', 'The batch was submitted without a webhook_url');
  const type = 'batch.completed';
  const event: WebhookPayload = {
    messageId: webhookMessageId(batch.id, type),
    type,
    jobId: batch.id,
    batchId: batch.id,
    tenantId: batch.tenantId,
  };
  await endpointIsBack(deps, batch.tenantId, batch.webhookUrl);
  await deps.outbox.redeliver(event);
  const entry = await deps.deliveries.get(event.messageId);
  // Written by the redelivery itself; absent only if it expired in between.
  return (
    entry ?? {
      webhookId: event.messageId,
      eventType: type,
      tenantId: batch.tenantId,
      jobId: batch.id,
      batchId: batch.id,
      url: batch.webhookUrl,
      state: 'pending',
      attempts: 0,
      createdAt: new Date().toISOString(),
    }
  );
}
