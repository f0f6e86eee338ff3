import type { JobRecord } from '@cutout/shared/stores';
import { toJobView, type JobStatus } from '@cutout/shared/views';
import type { AppDeps } from '../deps.ts';
import { notFound } from '../http/errors.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { batchJobPage } from '../batches/job-pages.ts';

export interface JobListQuery {
  status?: JobStatus;
  batch_id?: string;
  limit: number;
  cursor?: string;
}

/**
 * A page of the tenant's jobs, newest first (optionally of one status), or of one batch's
 * jobs in submission order (`batch_id`).
 */
export async function jobPage(
  deps: Pick<AppDeps, 'jobs' | 'batches' | 'storage' | 'config' | 'reviews'>,
  tenantId: string,
  { status, batch_id: batchId, limit, cursor }: JobListQuery,
) {
  const { jobs, storage, config } = deps;
  if (batchId !== undefined) {
    const batch = await deps.batches.get(batchId);
    if (!batch || batch.tenantId !== tenantId) throw notFound('Batch');
    return batchJobPage(deps, batchId, { limit, cursor, status });
  }
  let position = cursor === undefined ? undefined : decodeCursor(cursor);
  const page: JobRecord[] = [];
  let more = true;
  // Filtering by status may skip entries: read on until the page is full or the index ends.
  while (page.length < limit && more) {
    const entries = await jobs.listIds(tenantId, limit * 2, position);
    const records = await Promise.all(entries.map((entry) => jobs.get(entry.id)));
    await jobs.forget(
      tenantId,
      entries.filter((_, i) => !records[i]).map((entry) => entry.id),
    );
    let used = 0;
    for (const [i, entry] of entries.entries()) {
      if (page.length === limit) break;
      position = entry;
      used += 1;
      const record = records[i];
      if (record && (!status || record.status === status)) page.push(record);
    }
    more = entries.length === limit * 2 || used < entries.length;
  }
  const last = page.at(-1);
  return {
    data: await Promise.all(page.map((record) => toJobView(record, storage, config.api.resultUrlTtlMs))),
    next_cursor: more && last ? encodeCursor({ createdMs: Date.parse(last.createdAt), id: last.id }) : null,
  };
}
