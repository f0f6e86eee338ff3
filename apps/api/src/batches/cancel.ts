import type { Queue } from 'bullmq';
import { announceBatchIfEnded, type BatchAnnounceDeps, type JobStore, type RemoveBgPayload } from '@cutout/shared';

/** Items canceled at once: each is one small script, sent together. */
const PAGE = 500;

export interface CancelDeps extends BatchAnnounceDeps { jobs: JobStore; removeBg: Queue<RemoveBgPayload> }

/**
 * Cancels every item that has not started; started ones finish. Each cancel is the same
 * guarded transition as DELETE /v1/jobs/:id, so the counters move with it and a worker
 * that takes an item at the same moment wins or loses cleanly. Returns how many were canceled.
 */
export async function cancelBatchItems(deps: CancelDeps, batchId: string): Promise<number> {
  const { jobs, batches, removeBg } = deps;
  let canceled = 0;
  for (let start = 0; ; start += PAGE) {
    const ids = await batches.itemIds(batchId, start, PAGE);
    const finishedAt = new Date().toISOString();
    const results = await Promise.all(ids.map((id) => jobs.transition(id, ['queued'], { status: 'canceled', finishedAt, waitingReason: '' })));
    const gone = ids.filter((_, i) => results[i]);
    canceled += gone.length;
    // The worker skips canceled records anyway; removing the entries saves it the look.
    await Promise.all(gone.map((id) => removeBg.remove(id).catch(() => undefined)));
    if (ids.length < PAGE) break;
  }
  // When nothing was running, the last cancel ended the batch.
  await announceBatchIfEnded(deps, batchId);
  return canceled;
}
