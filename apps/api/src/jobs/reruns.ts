import { isMissingObject, newJobId, originalKey, type Storage } from '@cutout/shared/infra';
import type { RenditionPlan } from '@cutout/shared/renditions';
import { allowedOptionsText, refusedOptions } from '@cutout/shared/security';
import type { BatchRecord, JobRecord } from '@cutout/shared/stores';
import { isTerminal } from '@cutout/shared/views';
import type { AppDeps } from '../deps.ts';
import { ApiError, unavailable } from '../http/errors.ts';
import { queueSingleJob } from './queueing.ts';
import { createBatchFromList, createDepsOf } from '../batches/create.ts';
import type { BatchItem, RejectedRow } from '../batches/items.ts';

/** Which items of a batch a rerun takes: the ones reviewers flagged, the ones the automatic checks flagged, or the ones that failed. */
export type RerunSelection = 'rejected' | 'quality_flagged' | 'failed';

const NOTHING_SELECTED: Record<RerunSelection, string> = {
  rejected: 'No item of this batch is flagged as wrong',
  quality_flagged: 'No item of this batch has quality flags',
  failed: 'No item of this batch failed',
};

type RerunDeps = Pick<
  AppDeps,
  'config' | 'storage' | 'jobs' | 'batches' | 'batchFeeder' | 'reviews' | 'queues' | 'fair' | 'usage'
>;

/** What a rerun may give anew, validated (the rerun operations' schemas); each defaults to the source's. */
export interface RerunFields {
  options?: Record<string, string>;
  renditions?: RenditionPlan[];
  webhook_url?: string;
  metadata?: Record<string, unknown>;
  item_events?: boolean;
}

/**
 * Options a rerun takes over from its source: those the operator has stopped allowing since
 * are refused, so the client decides what to send instead.
 */
function checkInheritedOptions(options: Record<string, string> | undefined, allowed: readonly string[]): void {
  const refused = refusedOptions(options, allowed);
  if (refused.length > 0) {
    throw new ApiError(
      'invalid_options',
      `the original job's options ${refused.map((name) => `"${name}"`).join(', ')} are not forwarded any more (${allowedOptionsText(allowed)}); send "options" with the rerun`,
    );
  }
}

/** A copy of `source`'s original for job `jobId`; null when the original is no longer stored. */
async function copyOriginal(storage: Storage, source: JobRecord, jobId: string): Promise<string | null> {
  const key = originalKey(source.tenantId, jobId);
  try {
    await storage.copy(source.originalKey, key);
    return key;
  } catch (error) {
    if (isMissingObject(error)) return null;
    throw unavailable();
  }
}

/**
 * A new job on a copy of `source`'s original, with the source's options, renditions, webhook
 * and metadata unless `fields` gives others. Rejected results are out of duplicate detection
 * (see recordVerdict), so a rerun of one goes to ByByBG again; a rerun with other renditions
 * only reuses the stored cutout.
 */
export async function rerunJob(deps: RerunDeps, source: JobRecord, given: RerunFields): Promise<JobRecord> {
  if (!isTerminal(source.status))
    throw new ApiError('job_not_finished', `The job is ${source.status}; rerun it once it has ended`);
  if (!source.originalSha256 && source.sourceUrl)
    throw new ApiError(
      'original_missing',
      'The original of this job was never fetched, so there is nothing to rerun; submit its image_url again',
    );
  if (!given.options) checkInheritedOptions(source.options, deps.config.bybybg.allowedOptions);
  const id = newJobId();
  const key = await copyOriginal(deps.storage, source, id);
  if (!key)
    throw new ApiError('original_missing', 'The original of this job is no longer stored; submit the image again');
  const record: JobRecord = {
    id,
    tenantId: source.tenantId,
    status: 'queued',
    createdAt: new Date().toISOString(),
    attempts: 0,
    upstreamCalls: 0,
    originalKey: key,
    originalBytes: source.originalBytes,
    originalContentType: source.originalContentType,
    originalSha256: source.originalSha256,
    rerunOf: source.id,
    clientRef: source.clientRef,
    options: given.options ?? source.options,
    webhookUrl: given.webhook_url ?? source.webhookUrl,
    metadata: given.metadata ?? source.metadata,
    renditionPlans: given.renditions ?? source.renditionPlans,
  };
  await queueSingleJob(deps, record);
  return record;
}

/**
 * A new batch of `source`'s flagged or failed items, with `fields` (options, renditions,
 * webhook_url, item_events) as for a new batch; the source's options and renditions unless
 * others are given. Items
 * that are gone (past retention, original missing) are listed in `rejected`; when none is
 * left, 422 and nothing is kept.
 */
export async function rerunBatch(
  deps: RerunDeps,
  source: BatchRecord,
  selection: RerunSelection,
  settings: RerunFields,
  log: { error(details: object, message: string): void; warn(details: object, message: string): void },
): Promise<{ batch: BatchRecord; rejected: RejectedRow[] }> {
  const { config, batches, jobs } = deps;
  const ids =
    selection === 'rejected'
      ? await deps.reviews.rejectedIds(source.id, 0, config.api.maxBatchItems)
      : selection === 'quality_flagged'
        ? await batches.qualityFlaggedIds(source.id, 0, config.api.maxBatchItems)
        : await batches.endedIds(source.id, 'failed', 0, config.api.maxBatchItems);
  if (ids.length === 0) throw new ApiError('nothing_to_rerun', NOTHING_SELECTED[selection]);
  const { items, rejected, stored } = await rerunItems(deps, source.tenantId, ids);
  try {
    if (items.length === 0)
      throw new ApiError(
        'nothing_to_rerun',
        `None of the ${ids.length} items can be rerun (${rejected[0]?.reason ?? 'gone'})`,
      );
    const first = await jobs.get(ids[0]!);
    const options = settings.options ?? first?.options;
    if (!settings.options) checkInheritedOptions(options, config.bybybg.allowedOptions);
    const renditionPlans = settings.renditions ?? first?.renditionPlans;
    const batchSettings = {
      webhookUrl: settings.webhook_url,
      options,
      renditionPlans,
      itemEvents: settings.item_events ?? false,
    };
    const batch = await createBatchFromList(
      createDepsOf(deps, log),
      source.tenantId,
      items,
      rejected.length,
      batchSettings,
      source.id,
    ).catch((error: unknown) => {
      log.error({ err: error }, 'batch rerun failed');
      throw unavailable();
    });
    await deps.usage.add(source.tenantId, 'jobs', batch.total).catch(() => undefined);
    return { batch, rejected };
  } catch (error) {
    await Promise.allSettled(stored.map((key) => deps.storage.delete(key)));
    throw error;
  }
}

/**
 * The selected items as items of a new batch: one whose original is stored runs on a copy
 * of it; a URL item that failed before its original was fetched is fetched again.
 */
async function rerunItems(
  { jobs, storage }: Pick<RerunDeps, 'jobs' | 'storage'>,
  tenantId: string,
  ids: readonly string[],
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
    const clientRef = record.clientRef ?? record.id;
    if (record.originalSha256) {
      const jobId = newJobId();
      const key = await copyOriginal(storage, record, jobId);
      if (!key) {
        rejected.push({ row, reason: `${record.id}: original_missing` });
        continue;
      }
      stored.push(key);
      items.push({
        kind: 'file',
        jobId,
        clientRef,
        metadata: record.metadata,
        original: {
          bytes: record.originalBytes,
          contentType: record.originalContentType,
          sha256: record.originalSha256,
        },
      });
    } else if (record.sourceUrl) {
      items.push({ kind: 'url', imageUrl: record.sourceUrl, clientRef, metadata: record.metadata });
    } else {
      rejected.push({ row, reason: `${record.id}: original_missing` });
    }
  }
  return { items, rejected, stored };
}
