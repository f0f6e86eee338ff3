import type { FastifyError, FastifyRequest } from 'fastify';
import { cancelQueuedItems, type BatchRecord } from '@cutout/shared/stores';
import { toBatchView } from '@cutout/shared/views';
import type { AppDeps } from '../deps.ts';
import { tenantOf } from '../auth/authenticate.ts';
import type { FieldSchemas } from '../contract/fields.ts';
import { ApiError, toApiError, unavailable } from '../http/errors.ts';
import { skipRestOfBody } from '../intake/json-body.ts';
import { keyReused, requestInProgress, type StoredResponse } from '../http/idempotency.ts';
import { uploadRowsFor } from '../direct-uploads/batch-rows.ts';
import { batchSink, type DryRunTally } from './batch-sink.ts';
import { createDepsOf, openBatchWriter } from './create.ts';
import { makeDryRunStorage } from './dry-run-storage.ts';
import { estimateBatch, type EstimateDeps } from './estimate.ts';
import { readBatchRequest, type BatchIntake, type IntakeLimits } from './intake.ts';
import type { RejectedRow } from './items.ts';

type SubmitDeps = Pick<
  AppDeps,
  'config' | 'storage' | 'batches' | 'batchFeeder' | 'jobs' | 'queues' | 'idempotency' | 'usage' | 'uploads'
> &
  EstimateDeps;

export type SubmitAnswer = StoredResponse & { replayed: boolean };

/** A client's mistake (4xx): what it sent is not kept. Anything else broke on our side. */
const isClientError = (error: unknown) => toApiError(error as FastifyError).statusCode < 500;

/** The batch's view as a submission answers it, with the rows not accepted. */
export const createdView = (deps: Pick<AppDeps, 'config'>, batch: BatchRecord, rejected: readonly RejectedRow[]) => ({
  ...toBatchView(batch, { publicBaseUrl: deps.config.api.publicBaseUrl }),
  rejected,
});

const noValidItems = (rejected: readonly RejectedRow[]) => {
  const first = rejected
    .slice(0, 3)
    .map(({ row, reason }) => `row ${row}: ${reason}`)
    .join('; ');
  return new ApiError('no_valid_items', `No item of the batch is valid${first ? ` (${first})` : ''}`, {}, { rejected });
};

/**
 * `POST /v1/batches`: reads the request as it streams in and writes its items to Redis in
 * chunks as they are read; the batch commits (and its first items are queued) only once the
 * whole request was read. Bad input discards everything written; a failure on our side
 * leaves the batch `failed_to_create`, none of its items run. With an Idempotency-Key, a
 * retry gets the stored answer, waits (409) while the first request is alive, or replaces
 * the batch of a first request that died half-way. A dry run is read and checked the same
 * way and answered with its estimate; it leaves nothing behind, its key included.
 */
export async function submitBatch(
  deps: SubmitDeps,
  request: FastifyRequest,
  fields: FieldSchemas,
): Promise<SubmitAnswer> {
  const { config, storage, idempotency } = deps;
  const tenantId = tenantOf(request);
  // Checked by the operation's header schema.
  const idempotencyKey = request.headers['idempotency-key'] as string | undefined;
  const claim = idempotencyKey ? await claimOrTakeOver(deps, tenantId, idempotencyKey) : { kind: 'new' as const };
  const stored: string[] = [];
  const dropUploads = () => Promise.allSettled(stored.map((key) => storage.delete(key)));
  const limits = (uploadRows: IntakeLimits['uploadRows']): IntakeLimits => ({
    storage,
    tenantId,
    policy: { allowPrivate: config.webhooks.allowPrivate },
    fields,
    dryRunStorage: makeDryRunStorage(),
    maxItems: config.api.maxBatchItems,
    maxBytes: config.api.maxUploadBytes,
    maxPixels: config.api.maxImagePixels,
    maxManifestBytes: config.api.maxManifestBytes,
    uploadRows,
  });
  const release = () =>
    idempotencyKey ? idempotency.release(tenantId, idempotencyKey).catch(() => undefined) : undefined;

  if (claim.kind === 'done') {
    // A retry: the first request's batch stands; this request's items are only read to compare
    // (a dry run with a key already used differs by its dry_run field, so it is refused too).
    const intake = await readBatchRequest(
      request,
      limits(async () => undefined),
      batchSink(null),
      stored,
    ).finally(dropUploads);
    if (claim.response.fingerprint !== intake.fingerprint) throw keyReused();
    return { ...claim.response, replayed: true };
  }

  const sink = batchSink(async () => {
    const writer = await openBatchWriter(createDepsOf(deps, request.log), tenantId);
    if (idempotencyKey) await idempotency.attach(tenantId, idempotencyKey, writer.id);
    return writer;
  });
  // An upload is claimed by the batch it becomes; a dry run only looks at it.
  const uploadRows: IntakeLimits['uploadRows'] = async (uploadId, take) =>
    uploadRowsFor(deps, tenantId, sink.dryRun ? null : (await sink.writer()).id)(uploadId, take);
  const abandon = async (error: unknown) => {
    skipRestOfBody(request);
    await (isClientError(error) ? sink.opened?.discard() : sink.opened?.fail())?.catch((cause: unknown) =>
      request.log.warn({ err: cause, batch_id: sink.opened?.id }, 'refused batch not cleaned up; the sweep fails it'),
    );
    await Promise.all([dropUploads(), release()]);
  };

  let intake: BatchIntake;
  try {
    intake = await readBatchRequest(request, limits(uploadRows), sink, stored);
    if (intake.accepted === 0) throw noValidItems(intake.rejected);
  } catch (error) {
    await abandon(error);
    if (isClientError(error)) throw error;
    request.log.error({ err: error, batch_id: sink.opened?.id }, 'batch creation failed');
    throw unavailable();
  }
  if (intake.dryRun) {
    // Items read before its dry_run field went to a batch: that batch goes, nothing else was kept.
    await sink.opened?.discard().catch(() => undefined);
    await release();
    return dryRunOf(deps, tenantId, intake, sink.tally);
  }

  let batch: BatchRecord;
  try {
    const writer = await sink.writer();
    const location = `${config.api.publicBaseUrl}/v1/batches/${writer.id}`;
    const answerOf = (committed: BatchRecord): StoredResponse => ({
      fingerprint: intake.fingerprint,
      statusCode: 202,
      location,
      body: createdView(deps, committed, intake.rejected),
    });
    // The answer is stored by the commit's own script: a retry finds it, or a batch still being created.
    batch = await writer.commit(
      intake.settings,
      intake.rejected.length,
      idempotencyKey ? (committed) => idempotency.answer(tenantId, idempotencyKey, answerOf(committed)) : undefined,
    );
  } catch (error) {
    request.log.error({ err: error, batch_id: sink.opened?.id }, 'batch creation failed');
    await sink.opened?.fail().catch(() => undefined);
    await Promise.all([dropUploads(), release()]);
    throw unavailable();
  }
  await deps.usage.add(tenantId, 'jobs', intake.accepted).catch(() => undefined);
  request.log.info({ batch_id: batch.id, items: intake.accepted, rejected: intake.rejected.length }, 'batch accepted');
  const location = `${config.api.publicBaseUrl}/v1/batches/${batch.id}`;
  return {
    fingerprint: intake.fingerprint,
    statusCode: 202,
    location,
    body: createdView(deps, batch, intake.rejected),
    replayed: false,
  };
}

async function dryRunOf(
  deps: SubmitDeps,
  tenantId: string,
  intake: BatchIntake,
  tally: DryRunTally,
): Promise<SubmitAnswer> {
  const body = await estimateBatch(deps, tenantId, {
    tally,
    rejected: intake.rejected,
    options: intake.settings.options,
  });
  return { fingerprint: intake.fingerprint, statusCode: 200, body, replayed: false };
}

/**
 * The claim of an Idempotency-Key. A request still running with the key is 409; one that
 * died writing its batch (its lease lapsed) is replaced: that batch is failed (its items
 * canceled, none ran) and this request writes a new one.
 */
async function claimOrTakeOver(deps: SubmitDeps, tenantId: string, key: string) {
  const claim = await deps.idempotency.claim(tenantId, key);
  if (claim.kind !== 'in_progress') return claim;
  if (!claim.batchId) throw requestInProgress();
  const state = await deps.batches.creationState(claim.batchId);
  if (state === 'creating' || state === 'committed') throw requestInProgress();
  if (state === 'abandoned' && (await deps.batches.failCreation(claim.batchId))) {
    await cancelQueuedItems({ jobs: deps.jobs, batches: deps.batches, removeBg: deps.queues.removeBg }, claim.batchId);
  }
  if (!(await deps.idempotency.takeOver(tenantId, key, claim.batchId))) throw requestInProgress();
  return { kind: 'new' as const };
}
