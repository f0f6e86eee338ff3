import type { BatchStore, JobRecord, JobStore, Reviews } from '@cutout/shared/stores';
import { decodeOffsetCursor, encodeOffsetCursor } from '../http/cursor.ts';

/**
 * Which of a batch's items a page lists: all (submission order), one final status (end
 * order), flagged by a reviewer (flag order), or flagged by the automatic checks (end order).
 */
export type ItemFilter = 'all' | 'succeeded' | 'failed' | 'canceled' | 'rejected' | 'quality_flagged';
export const ITEM_FILTERS: readonly ItemFilter[] = [
  'all',
  'succeeded',
  'failed',
  'canceled',
  'rejected',
  'quality_flagged',
];

/** One Redis range read per page, whatever the batch's size and the filter. */
function itemIdPage(
  { batches, reviews }: { batches: BatchStore; reviews: Reviews },
  batchId: string,
  filter: ItemFilter,
  offset: number,
  count: number,
): Promise<string[]> {
  if (filter === 'all') return batches.itemIds(batchId, offset, count);
  if (filter === 'rejected') return reviews.rejectedIds(batchId, offset, count);
  if (filter === 'quality_flagged') return batches.qualityFlaggedIds(batchId, offset, count);
  return batches.endedIds(batchId, filter, offset, count);
}

/**
 * A page of the records of a batch's items under `filter` (`limit` items, the cursor an
 * offset, opaque to clients), and the cursor of the next page. Items whose records have
 * expired are left out.
 */
export async function itemRecordPage(
  deps: { batches: BatchStore; reviews: Reviews; jobs: JobStore },
  batchId: string,
  filter: ItemFilter,
  { limit: pageSize, cursor }: { limit: number; cursor?: string },
): Promise<{ records: JobRecord[]; nextCursor: string | null }> {
  const offset = decodeOffsetCursor(cursor);
  const ids = await itemIdPage(deps, batchId, filter, offset, pageSize + 1);
  const records = await Promise.all(ids.slice(0, pageSize).map((id) => deps.jobs.get(id)));
  return {
    records: records.filter((record): record is JobRecord => record !== null),
    nextCursor: ids.length > pageSize ? encodeOffsetCursor(offset + pageSize) : null,
  };
}
