import type { Queue } from 'bullmq';
import type { BatchStore } from './batch-store.ts';
import type { JobStore } from './job-store.ts';
import type { RemoveBgPayload } from '../infra/queues.ts';

/** Items canceled at once: each is one small script, sent together. */
const PAGE = 500;

export interface CancelItemsDeps {
  jobs: JobStore;
  batches: BatchStore;
  removeBg: Queue<RemoveBgPayload>;
}

/**
 * Cancels every item of the batch that has not started; started ones finish. Each cancel is
 * the same guarded transition as DELETE /v1/jobs/:id, so the counters move with it and a
 * worker that takes an item at the same moment wins or loses cleanly. Only items the feeder
 * had handed to the queue have a BullMQ job to remove. Returns how many were canceled.
 */
export async function cancelQueuedItems(
  { jobs, batches, removeBg }: CancelItemsDeps,
  batchId: string,
): Promise<number> {
  const fed = (await batches.get(batchId))?.fed ?? 0;
  let canceled = 0;
  for (let start = 0; ; start += PAGE) {
    const ids = await batches.itemIds(batchId, start, PAGE);
    const finishedAt = new Date().toISOString();
    const results = await Promise.all(
      ids.map((id) => jobs.transition(id, ['queued'], { status: 'canceled', finishedAt, waitingReason: null })),
    );
    canceled += results.filter(Boolean).length;
    // The worker skips canceled records anyway; removing the entries saves it the look.
    const queued = ids.filter((_, i) => results[i] && start + i < fed);
    await Promise.all(queued.map((id) => removeBg.remove(id).catch(() => undefined)));
    if (ids.length < PAGE) break;
  }
  return canceled;
}

/** Creations one sweep looks at. */
const SWEEP_CREATIONS = 100;

/**
 * Fails every batch whose creation stopped half-way (its API process died, or lost Redis, and
 * its lease lapsed): it shows `failed_to_create` with the items it had accepted, all
 * canceled, none run. Safe with many workers sweeping at once: one of them wins each batch.
 * Returns the ids of the batches it failed.
 */
export async function failAbandonedCreations(deps: CancelItemsDeps): Promise<string[]> {
  const failed: string[] = [];
  for (const batchId of await deps.batches.creatingIds(SWEEP_CREATIONS)) {
    if (!(await deps.batches.failCreation(batchId))) continue;
    await cancelQueuedItems(deps, batchId);
    failed.push(batchId);
  }
  return failed;
}
