import { toJobView, type JobStatus } from '@cutout/shared/views';
import type { AppDeps } from '../deps.ts';
import { itemRecordPage, type ItemFilter } from './item-pages.ts';

export interface BatchJobQuery {
  limit: number;
  cursor?: string;
  status?: JobStatus;
  review?: 'rejected';
  quality?: 'flagged';
}

/**
 * A page of a batch's jobs: all in submission order, or those that ended with `status`
 * (in the order they ended), or those a reviewer flagged (`review=rejected`), or those
 * the automatic checks flagged (`quality=flagged`, in the order they ended).
 */
export async function batchJobPage(
  deps: Pick<AppDeps, 'batches' | 'jobs' | 'storage' | 'config' | 'reviews'>,
  batchId: string,
  { limit, cursor, status, review, quality }: BatchJobQuery,
) {
  const ended = status === 'succeeded' || status === 'failed' || status === 'canceled';
  const filter: ItemFilter = review ? 'rejected' : quality ? 'quality_flagged' : ended ? status : 'all';
  const { records, nextCursor } = await itemRecordPage(deps, batchId, filter, { limit, cursor });
  // Queued and processing are moments, not lists: those pages are the items page filtered.
  const wanted = records.filter((record) => status === undefined || record.status === status);
  const data = await Promise.all(
    wanted.map((record) => toJobView(record, deps.storage, deps.config.api.resultUrlTtlMs)),
  );
  return { data, next_cursor: nextCursor };
}
