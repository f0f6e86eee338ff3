import type { BatchStore } from './batch-store.ts';
import { webhookMessageId } from '../infra/ids.ts';
import type { WebhookOutbox } from './webhook-outbox.ts';

export interface BatchAnnounceDeps {
  batches: BatchStore;
  outbox: WebhookOutbox;
}

/**
 * Queues `batch.completed` once every item has ended. Called after any item's terminal
 * transition (worker or cancel), so a rerun of the last item (at-least-once) finds it
 * announced and does nothing; the stable message id covers the race of two callers.
 */
export async function announceBatchIfEnded({ batches, outbox }: BatchAnnounceDeps, batchId: string): Promise<void> {
  const batch = await batches.get(batchId);
  if (!batch?.webhookUrl || batch.ended < batch.total) return;
  if (await batches.isAnnounced(batchId)) return;
  const type = 'batch.completed';
  await outbox.announce({
    messageId: webhookMessageId(batchId, type),
    type,
    jobId: batchId,
    batchId,
    tenantId: batch.tenantId,
  });
  await batches.markAnnounced(batchId);
}
