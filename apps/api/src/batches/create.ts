import {
  batchesFlow, enqueueFairly, newBatchId, newJobId, originalKey,
  type BatchRecord, type BatchStore, type FairEnqueue, type JobRecord,
} from '@cutout/shared';
import type { BatchIntake } from './intake.ts';

/** Items written per MULTI and per addBulk: large enough to amortise round trips, small enough not to block Redis. */
const CHUNK = 500;

export interface CreateBatchDeps { batches: BatchStore; fairEnqueue: FairEnqueue }

/**
 * Writes the batch, then its items chunk by chunk: one MULTI with the records and one
 * addBulk per chunk, never a request per item. `total` is set first so the batch cannot
 * complete while its later chunks are still being written.
 */
export async function createBatch({ batches, fairEnqueue }: CreateBatchDeps, tenantId: string, intake: BatchIntake, rerunOf?: string): Promise<BatchRecord> {
  const createdAt = new Date().toISOString();
  const batch: BatchRecord = {
    id: newBatchId(), tenantId, status: 'processing', createdAt,
    total: intake.items.length, queued: 0, processing: 0, succeeded: 0, failed: 0, canceled: 0, rejected: intake.rejected.length,
    ended: 0, upstreamCalls: 0, creditsSaved: 0, webhookUrl: intake.webhookUrl, itemEvents: intake.itemEvents, reviewRejected: 0, qualityFlagged: 0, rerunOf,
    renditionNames: intake.renditionPlans?.map((plan) => plan.name),
  };
  await batches.create(batch);
  for (let start = 0; start < intake.items.length; start += CHUNK) {
    const records = intake.items.slice(start, start + CHUNK).map((item) => itemRecord(batch, intake, item, createdAt));
    await batches.addItems(batch.id, records);
    await enqueueFairly(fairEnqueue, batchesFlow(tenantId), records.map((record) => ({ jobId: record.id, tenantId })));
  }
  return { ...batch, queued: batch.total };
}

function itemRecord(batch: BatchRecord, intake: BatchIntake, item: BatchIntake['items'][number], createdAt: string): JobRecord {
  const id = item.kind === 'file' ? item.jobId : newJobId();
  return {
    id, tenantId: batch.tenantId, status: 'queued', createdAt, attempts: 0, upstreamCalls: 0,
    originalKey: originalKey(batch.tenantId, id),
    // A URL item's original is fetched by the worker; until then it has no size or type.
    originalBytes: item.kind === 'file' ? item.original.bytes : 0,
    originalContentType: item.kind === 'file' ? item.original.contentType : '',
    originalSha256: item.kind === 'file' ? item.original.sha256 : undefined,
    sourceUrl: item.kind === 'url' ? item.imageUrl : undefined,
    metadata: item.metadata,
    options: intake.options,
    renditionPlans: intake.renditionPlans,
    // Items send their own job.* events only when the client asked for them.
    webhookUrl: intake.itemEvents ? intake.webhookUrl : undefined,
    batchId: batch.id,
    clientRef: item.clientRef,
  };
}
