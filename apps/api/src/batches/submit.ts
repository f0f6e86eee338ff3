import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { cancelQueuedItems, toBatchView, type BatchRecord } from '@cutout/shared';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { toApiError, unavailable } from '../errors.ts';
import { skipRestOfBody } from '../json-body.ts';
import { idempotencyKeyOf, keyReused, requestInProgress, type StoredResponse } from '../idempotency.ts';
import { uploadRowsFor } from '../direct-uploads/batch-rows.ts';
import { createDepsOf, openBatchWriter, type BatchWriter } from './create.ts';
import { readBatchRequest, type BatchIntake, type IntakeLimits } from './intake.ts';

type SubmitDeps = Pick<AppDeps, 'config' | 'storage' | 'batches' | 'batchFeeder' | 'jobs' | 'queues' | 'idempotency' | 'usage' | 'uploads'>;

/** A client's mistake (4xx): what it sent is not kept. Anything else broke on our side. */
const isClientError = (error: unknown) => toApiError(error as FastifyError).statusCode < 500;

/**
 * `POST /v1/batches`: reads the request as it streams in and writes its items to Redis in
 * chunks as they are read; the batch commits (and its first items are queued) only once the
 * whole request was read. Bad input discards everything written; a failure on our side
 * leaves the batch `failed_to_create`, none of its items run. With an Idempotency-Key, a
 * retry gets the stored answer, waits (409) while the first request is alive, or replaces
 * the batch of a first request that died half-way.
 */
export async function submitBatch(deps: SubmitDeps, request: FastifyRequest, reply: FastifyReply) {
  const { config, storage, idempotency } = deps;
  const tenantId = tenantOf(request);
  const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key']);
  const claim = idempotencyKey ? await claimOrTakeOver(deps, tenantId, idempotencyKey) : { kind: 'new' as const };
  const stored: string[] = [];
  const dropUploads = () => Promise.allSettled(stored.map((key) => storage.delete(key)));
  const limits = (uploadRows: IntakeLimits['uploadRows']): IntakeLimits => ({
    storage, tenantId, policy: { allowPrivate: config.webhooks.allowPrivate }, allowedOptions: config.bybybg.allowedOptions,
    maxItems: config.api.maxBatchItems, maxBytes: config.api.maxUploadBytes, maxPixels: config.api.maxImagePixels, maxManifestBytes: config.api.maxManifestBytes,
    uploadRows,
  });
  const release = () => (idempotencyKey ? idempotency.release(tenantId, idempotencyKey).catch(() => undefined) : undefined);

  if (claim.kind === 'done') {
    // A retry: the first request's batch stands; this request's items are only read to compare.
    const intake = await readBatchRequest(request, limits(async () => undefined), { add: async () => undefined }, stored).finally(dropUploads);
    if (claim.response.fingerprint !== intake.fingerprint) throw keyReused();
    return replay(reply, claim.response);
  }

  let writer: BatchWriter;
  try {
    writer = await openBatchWriter(createDepsOf(deps, request.log), tenantId);
    if (idempotencyKey) await idempotency.attach(tenantId, idempotencyKey, writer.id);
  } catch (error) {
    await release();
    request.log.error({ err: error }, 'batch creation failed');
    throw unavailable();
  }
  let intake: BatchIntake;
  try {
    intake = await readBatchRequest(request, limits(uploadRowsFor(deps, tenantId, writer.id)), writer, stored);
  } catch (error) {
    skipRestOfBody(request);
    await (isClientError(error) ? writer.discard() : writer.fail()).catch((cause: unknown) => request.log.warn({ err: cause, batch_id: writer.id }, 'refused batch not cleaned up; the sweep fails it'));
    await Promise.all([dropUploads(), release()]);
    if (isClientError(error)) throw error;
    request.log.error({ err: error, batch_id: writer.id }, 'batch creation failed');
    throw unavailable();
  }
  if (intake.accepted === 0) {
    await writer.discard().catch(() => undefined);
    await Promise.all([dropUploads(), release()]);
    const first = intake.rejected.slice(0, 3).map(({ row, reason }) => `row ${row}: ${reason}`).join('; ');
    return reply.status(422).send({
      error: { code: 'no_valid_items', message: `No item of the batch is valid${first ? ` (${first})` : ''}`, request_id: request.id, rejected: intake.rejected },
    });
  }
  const location = `${config.api.publicBaseUrl}/v1/batches/${writer.id}`;
  const answerOf = (batch: BatchRecord): StoredResponse => ({
    fingerprint: intake.fingerprint, statusCode: 202, location, body: { ...toBatchView(batch, { publicBaseUrl: config.api.publicBaseUrl }), rejected: intake.rejected },
  });
  let answer: StoredResponse;
  try {
    // The answer is stored by the commit's own script: a retry finds it, or a batch still being created.
    const batch = await writer.commit(intake.settings, intake.rejected.length, idempotencyKey ? (committed) => idempotency.answer(tenantId, idempotencyKey, answerOf(committed)) : undefined);
    answer = answerOf(batch);
  } catch (error) {
    request.log.error({ err: error, batch_id: writer.id }, 'batch creation failed');
    await writer.fail().catch(() => undefined);
    await Promise.all([dropUploads(), release()]);
    throw unavailable();
  }
  await deps.usage.add(tenantId, 'jobs', intake.accepted).catch(() => undefined);
  request.log.info({ batch_id: writer.id, items: intake.accepted, rejected: intake.rejected.length }, 'batch accepted');
  return reply.status(202).header('location', location).send(answer.body);
}

const replay = (reply: FastifyReply, stored: StoredResponse) =>
  reply.status(stored.statusCode).header('location', stored.location).header('idempotent-replayed', 'true').send(stored.body);

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
