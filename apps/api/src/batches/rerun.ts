import { newJobId, originalKey, type JobRecord, type JobStore, type Storage } from '@cutout/shared';
import { ApiError } from '../errors.ts';
import type { BatchItem, RejectedRow } from './items.ts';

/** Which items of a batch a rerun takes: the ones reviewers flagged, or the ones that failed. */
export type RerunSelection = 'rejected' | 'failed';

/**
 * Turns a batch's selected items into the items of a new batch: an item whose original is
 * stored is rerun on a copy of it; a URL item that failed before its original was fetched
 * is fetched again from its URL. Items that are gone (past retention) are listed as rejected.
 */
export async function rerunItems(
  { jobs, storage }: { jobs: JobStore; storage: Storage }, tenantId: string, ids: readonly string[],
): Promise<{ items: BatchItem[]; rejected: RejectedRow[]; stored: string[] }> {
  const items: BatchItem[] = [];
  const rejected: RejectedRow[] = [];
  const stored: string[] = [];
  const records = await Promise.all(ids.map((id) => jobs.get(id)));
  for (const [index, record] of records.entries()) {
    const row = index + 1;
    if (!record || record.tenantId !== tenantId) {
      rejected.push({ row, reason: `${ids[index]}: expired` });
      continue;
    }
    const item = await rerunItem(storage, record, stored);
    if (typeof item === 'string') rejected.push({ row, reason: `${record.id}: ${item}` });
    else items.push(item);
  }
  return { items, rejected, stored };
}

async function rerunItem(storage: Storage, record: JobRecord, stored: string[]): Promise<BatchItem | string> {
  const clientRef = record.clientRef ?? record.id;
  if (record.originalSha256) {
    const jobId = newJobId();
    const key = originalKey(record.tenantId, jobId);
    try {
      await storage.copy(record.originalKey, key);
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return 'original_missing';
      throw new ApiError(503, 'service_unavailable', 'A backing service is unavailable; retry shortly', { 'retry-after': '5' });
    }
    stored.push(key);
    return { kind: 'file', jobId, clientRef, metadata: record.metadata, original: { bytes: record.originalBytes, contentType: record.originalContentType, sha256: record.originalSha256 } };
  }
  if (record.sourceUrl) return { kind: 'url', imageUrl: record.sourceUrl, clientRef, metadata: record.metadata };
  return 'original_missing';
}
