import type { BatchStore, Reviews } from '@cutout/shared';

/** Which of a batch's items a page lists: all (submission order), one final status (end order), or flagged. */
export type ItemFilter = 'all' | 'succeeded' | 'failed' | 'canceled' | 'rejected';
export const ITEM_FILTERS: readonly ItemFilter[] = ['all', 'succeeded', 'failed', 'canceled', 'rejected'];

/** One Redis range read per page, whatever the batch's size and the filter. */
export function itemIdPage({ batches, reviews }: { batches: BatchStore; reviews: Reviews }, batchId: string, filter: ItemFilter, offset: number, count: number): Promise<string[]> {
  if (filter === 'all') return batches.itemIds(batchId, offset, count);
  if (filter === 'rejected') return reviews.rejectedIds(batchId, offset, count);
  return batches.endedIds(batchId, filter, offset, count);
}
