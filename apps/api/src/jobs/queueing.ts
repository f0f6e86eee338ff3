import { enqueueFairly, singleJobsFlow, type FairEnqueue, type JobRecord } from '@cutout/shared/stores';
import type { AppDeps } from '../deps.ts';
import { unavailable } from '../http/errors.ts';

/** How the API queues remove-bg jobs: through the fair scheduler, with the configured retries. */
const fairEnqueueOf = ({ queues, fair, config }: Pick<AppDeps, 'queues' | 'fair' | 'config'>): FairEnqueue => ({
  queue: queues.removeBg,
  scheduler: fair,
  attempts: config.bybybg.maxAttempts,
  retryDelayMs: config.bybybg.retryDelayMs,
});

/**
 * Writes a single job's record and queues it, its original already in S3. Nothing is left
 * half-written: when either step fails, the record and the original go, and the client
 * gets 503 to retry.
 */
export async function queueSingleJob(
  deps: Pick<AppDeps, 'queues' | 'fair' | 'config' | 'jobs' | 'storage' | 'usage'>,
  record: JobRecord,
): Promise<void> {
  try {
    await deps.jobs.create(record);
    await enqueueFairly(fairEnqueueOf(deps), singleJobsFlow(record.tenantId), [
      { jobId: record.id, tenantId: record.tenantId },
    ]);
  } catch {
    await Promise.allSettled([deps.storage.delete(record.originalKey), deps.jobs.remove(record)]);
    throw unavailable();
  }
  await deps.usage.add(record.tenantId, 'jobs').catch(() => undefined);
}
