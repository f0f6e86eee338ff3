import { ImageInputError } from '@cutout/shared/images';
import { isMissingObject, finalWebhookEvent, webhookMessageId } from '@cutout/shared/infra';
import {
  announceBatchIfEnded,
  type BatchStore,
  type JobChanges,
  type JobError,
  type JobRecord,
  type JobStore,
  type WebhookOutbox,
} from '@cutout/shared/stores';
import { isTerminal } from '@cutout/shared/views';
import { UpstreamError } from '../bybybg/errors.ts';

export interface AnnounceDeps {
  jobs: JobStore;
  batches: BatchStore;
  outbox: WebhookOutbox;
}

/**
 * Enqueues the job's final event (batch items have a webhook URL only with item_events);
 * the message id makes a second enqueue a no-op. The end of a batch's last item also
 * announces the batch.
 */
export async function announce(deps: Pick<AnnounceDeps, 'batches' | 'outbox'>, record: JobRecord): Promise<void> {
  const type = finalWebhookEvent(record.status);
  if (record.webhookUrl && type) {
    await deps.outbox.announce({
      messageId: webhookMessageId(record.id, type),
      type,
      jobId: record.id,
      tenantId: record.tenantId,
    });
  }
  if (record.batchId && isTerminal(record.status)) await announceBatchIfEnded(deps, record.batchId);
}

/** Records the final failure of a job that has not ended yet (with `extra` fields, e.g. a thumbnail), and announces it. */
export async function failJob(
  deps: AnnounceDeps,
  jobId: string,
  error: JobError,
  attempts?: number,
  extra: JobChanges = {},
): Promise<boolean> {
  const failed = await deps.jobs.transition(jobId, ['queued', 'processing'], {
    ...extra,
    status: 'failed',
    finishedAt: new Date().toISOString(),
    error,
    attempts,
  });
  if (failed) await announce(deps, failed);
  return failed !== null;
}

/** What a client sees of an error: upstream errors carry their own code; anything else is ours. */
export function toJobError(error: unknown): JobError {
  if (error instanceof UpstreamError) return { code: error.code, message: error.message, retryable: error.retryable };
  // A batch item's image_url: unreachable now (retryable) or never usable (not an image, not allowed).
  if (error instanceof ImageInputError) return { code: error.code, message: error.message, retryable: error.retryable };
  if (isMissingObject(error))
    return { code: 'original_missing', message: 'The original image is no longer in storage', retryable: false };
  return {
    code: 'processing_error',
    message: 'The job could not be processed; it was retried and gave up',
    retryable: true,
  };
}
