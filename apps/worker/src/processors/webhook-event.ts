import type { Storage, WebhookPayload } from '@cutout/shared/infra';
import type { BatchStore, JobStore, WebhookDelivery, WebhookDeliveryLog } from '@cutout/shared/stores';
import { toBatchView, toJobView } from '@cutout/shared/views';

export interface WebhookEventDeps {
  jobs: JobStore;
  batches: BatchStore;
  deliveries: WebhookDeliveryLog;
  storage: Storage;
  /** Links in batch events (the results manifest) name the API by this. */
  publicBaseUrl: string;
  resultUrlTtlMs: number;
}

/** Where an event goes and, built only when it is sent, what it says. */
export interface WebhookTarget {
  url: string;
  /** The delivery state as last recorded: the job's `webhook` field, or a batch event's log entry. */
  current?: WebhookDelivery;
  body(): Promise<{ timestamp: string; data: unknown }>;
}

/**
 * The job, or for batch events the batch, an event is about; null once its record expired.
 * The body waits until the endpoint admits the delivery: a held delivery presigns nothing.
 */
export async function webhookTarget(
  deps: WebhookEventDeps,
  { jobId, batchId, messageId }: WebhookPayload,
): Promise<WebhookTarget | null> {
  if (batchId) {
    const [batch, logged] = await Promise.all([deps.batches.get(batchId), deps.deliveries.get(messageId)]);
    if (!batch?.webhookUrl) return null;
    return {
      url: batch.webhookUrl,
      current: logged ?? undefined,
      body: async () => ({
        timestamp: batch.completedAt ?? new Date().toISOString(),
        data: toBatchView(batch, { publicBaseUrl: deps.publicBaseUrl }),
      }),
    };
  }
  const record = await deps.jobs.get(jobId);
  if (!record?.webhookUrl) return null;
  return {
    url: record.webhookUrl,
    current: record.webhook,
    body: async () => ({
      timestamp: record.finishedAt ?? new Date().toISOString(),
      data: await toJobView(record, deps.storage, deps.resultUrlTtlMs),
    }),
  };
}
