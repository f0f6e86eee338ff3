import { newJobId } from '@cutout/shared/infra';
import type { RenditionPlan } from '@cutout/shared/renditions';
import {
  cancelQueuedItems,
  newBatchId,
  type BatchFeeder,
  type BatchItemRecord,
  type BatchRecord,
  type BatchStore,
  type CancelItemsDeps,
  type StoredAnswer,
} from '@cutout/shared/stores';
import type { AppDeps } from '../deps.ts';
import type { BatchItem } from './items.ts';

/** Items written per MULTI: large enough to amortise round trips, small enough not to block Redis. */
const CHUNK = 500;

/** What applies to every item; stored once, on the batch. */
export interface BatchSettings {
  webhookUrl?: string;
  options?: Record<string, string>;
  renditionPlans?: RenditionPlan[];
  itemEvents: boolean;
}

export interface CreateBatchDeps extends CancelItemsDeps {
  batches: BatchStore;
  feeder: BatchFeeder;
  /** How long a creation may go without renewing its lease before it counts as dead (BATCH_CREATION_TIMEOUT). */
  leaseMs: number;
  log: { warn(details: object, message: string): void };
}

export const createDepsOf = (
  deps: Pick<AppDeps, 'config' | 'batches' | 'batchFeeder' | 'jobs' | 'queues'>,
  log: CreateBatchDeps['log'],
): CreateBatchDeps => ({
  batches: deps.batches,
  feeder: deps.batchFeeder,
  jobs: deps.jobs,
  removeBg: deps.queues.removeBg,
  leaseMs: deps.config.batches.creationTimeoutMs,
  log,
});

/**
 * A batch being written as its items are read: `add` buffers an item and writes a chunk
 * once it is full (one chunk in flight while the next is read); nothing is queued before
 * `commit`. Exactly one of `commit`, `discard` or `fail` ends it.
 */
export interface BatchWriter {
  readonly id: string;
  /** Items accepted so far. */
  readonly accepted: number;
  /** A promise when a full chunk is being written (wait for it before the next item), else undefined. */
  add(item: BatchItem): Promise<void> | undefined;
  /**
   * Writes what is left, makes the batch `processing` with its settings (and, in the same
   * script, the answer `answerFor` builds from the batch as committed), then queues its
   * first items. Throws when the creation had already been failed (its lease lapsed).
   */
  commit(
    settings: BatchSettings,
    rejected: number,
    answerFor?: (batch: BatchRecord) => StoredAnswer,
  ): Promise<BatchRecord>;
  /** The request was refused (bad input): nothing of the batch is kept. */
  discard(): Promise<void>;
  /** The creation broke on our side: the batch shows `failed_to_create`, its items canceled, none run. */
  fail(): Promise<void>;
}

class CreationLostError extends Error {
  readonly batchId: string;
  constructor(batchId: string) {
    super(`batch ${batchId} stopped being created before it committed`);
    this.name = 'CreationLostError';
    this.batchId = batchId;
  }
}

export async function openBatchWriter(
  deps: CreateBatchDeps,
  tenantId: string,
  { rerunOf }: { rerunOf?: string } = {},
): Promise<BatchWriter> {
  const { batches, leaseMs } = deps;
  const id = newBatchId();
  const createdAt = new Date().toISOString();
  await batches.open({ id, tenantId, createdAt, rerunOf }, leaseMs);
  // The lease also covers a client that sends its rows slowly: only a dead writer lets it lapse.
  const renewal = setInterval(
    () => void batches.renewLease(id, leaseMs).catch(() => undefined),
    Math.max(leaseMs / 3, 100),
  );
  renewal.unref();
  let pending: BatchItemRecord[] = [];
  let inFlight: Promise<void> = Promise.resolve();
  let accepted = 0;

  const flush = async () => {
    await inFlight;
    const chunk = pending;
    pending = [];
    inFlight = batches.addItems(id, chunk, leaseMs);
  };

  return {
    id,
    get accepted() {
      return accepted;
    },
    add(item) {
      pending.push(itemRecord(id, tenantId, item, createdAt));
      accepted += 1;
      return pending.length >= CHUNK ? flush() : undefined;
    },
    async commit(settings, rejected, answerFor) {
      try {
        await flush();
        await inFlight;
      } finally {
        clearInterval(renewal);
      }
      const fields: Partial<BatchRecord> = {
        ...settings,
        rejected,
        renditionNames: settings.renditionPlans?.map((plan) => plan.name),
      };
      const batch: BatchRecord = {
        id,
        tenantId,
        status: 'processing',
        createdAt,
        rerunOf,
        total: accepted,
        queued: accepted,
        processing: 0,
        succeeded: 0,
        failed: 0,
        canceled: 0,
        rejected,
        ended: 0,
        upstreamCalls: 0,
        creditsSaved: 0,
        reviewRejected: 0,
        qualityFlagged: 0,
        fed: 0,
        ...fields,
        itemEvents: settings.itemEvents,
      };
      const outcome = await batches.commit(id, fields, answerFor?.(batch));
      if (outcome === 'gone') throw new CreationLostError(id);
      // A failed first top-up is not the client's concern: the workers' sweep queues the items.
      if (outcome === 'committed')
        await deps.feeder
          .topUp(id)
          .catch((error: unknown) => deps.log.warn({ err: error, batch_id: id }, 'first items not queued yet'));
      return batch;
    },
    async discard() {
      clearInterval(renewal);
      await inFlight.catch(() => undefined);
      await batches.discard(id, tenantId);
    },
    async fail() {
      clearInterval(renewal);
      await inFlight.catch(() => undefined);
      if (await batches.failCreation(id, { force: true })) await cancelQueuedItems(deps, id);
    },
  };
}

/** An item's own fields; the defaults and the batch's settings are filled in when it is read. */
function itemRecord(batchId: string, tenantId: string, item: BatchItem, createdAt: string): BatchItemRecord {
  const common = {
    tenantId,
    status: 'queued' as const,
    createdAt,
    batchId,
    clientRef: item.clientRef,
    metadata: item.metadata,
  };
  if (item.kind === 'file') {
    return {
      ...common,
      id: item.jobId,
      originalBytes: item.original.bytes,
      originalContentType: item.original.contentType,
      originalSha256: item.original.sha256,
    };
  }
  if (item.kind === 'upload') return { ...common, id: newJobId(), originalBytes: item.bytes, uploadKey: item.key };
  return { ...common, id: newJobId(), sourceUrl: item.imageUrl };
}

/** A batch from items already in memory (a rerun): written and committed in one go. */
export async function createBatchFromList(
  deps: CreateBatchDeps,
  tenantId: string,
  items: readonly BatchItem[],
  rejected: number,
  settings: BatchSettings,
  rerunOf?: string,
): Promise<BatchRecord> {
  const writer = await openBatchWriter(deps, tenantId, { rerunOf });
  try {
    for (const item of items) await writer.add(item);
    return await writer.commit(settings, rejected);
  } catch (error) {
    await writer.fail().catch(() => undefined);
    throw error;
  }
}
