import { announceBatchIfEnded, type JobRecord } from '@cutout/shared/stores';
import type { AppDeps } from '../deps.ts';
import { ApiError } from '../http/errors.ts';

/**
 * Cancels a job no worker has taken yet (a canceled one stays as it is); 409 once it has
 * started or ended. A batch item's cancel may complete its batch, which then announces itself.
 */
export async function cancelJob(
  deps: Pick<AppDeps, 'jobs' | 'queues' | 'batches' | 'webhookOutbox'>,
  record: JobRecord,
): Promise<JobRecord> {
  if (record.status === 'canceled') return record;
  const canceled = await deps.jobs.transition(record.id, ['queued'], {
    status: 'canceled',
    finishedAt: new Date().toISOString(),
    waitingReason: null,
  });
  if (!canceled) {
    const now = (await deps.jobs.get(record.id))?.status ?? record.status;
    throw new ApiError(
      now === 'processing' ? 'job_already_started' : 'job_finished',
      `The job is ${now} and can no longer be canceled`,
    );
  }
  // The worker skips a canceled record anyway; removing the queue entry just saves it the look.
  await deps.queues.removeBg.remove(record.id).catch(() => undefined);
  if (canceled.batchId)
    await announceBatchIfEnded({ batches: deps.batches, outbox: deps.webhookOutbox }, canceled.batchId);
  return canceled;
}
