import {
  announceBatchIfEnded,
  cancelQueuedItems,
  type BatchAnnounceDeps,
  type CancelItemsDeps,
} from '@cutout/shared/stores';

export type CancelDeps = BatchAnnounceDeps & CancelItemsDeps;

/** Cancels every item that has not started (see cancelQueuedItems); when nothing was running, the last cancel ended the batch. */
export async function cancelBatchItems(deps: CancelDeps, batchId: string): Promise<number> {
  const canceled = await cancelQueuedItems(deps, batchId);
  await announceBatchIfEnded(deps, batchId);
  return canceled;
}
