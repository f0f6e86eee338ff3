import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { toBatchView, type BatchRecord } from '@cutout/shared';
import type { AppDeps } from '../deps.ts';
import { ApiError, unavailable } from '../errors.ts';
import { keyReused, requestInProgress, type StoredResponse } from '../idempotency.ts';
import { fairEnqueueOf } from '../queueing.ts';
import { createBatch } from './create.ts';
import type { BatchIntake } from './intake.ts';
import { estimateBatch, type EstimateDeps } from './estimate.ts';

type SubmitDeps = Pick<AppDeps, 'config' | 'storage' | 'batches' | 'idempotency' | 'usage' | 'queues' | 'fair'> & EstimateDeps;

/** The batch's view as a submission answers it, with the rows not accepted. */
export async function createdView(deps: Pick<AppDeps, 'config' | 'batches'>, batch: BatchRecord, rejected: BatchIntake['rejected']) {
  const view = toBatchView(batch, { publicBaseUrl: deps.config.api.publicBaseUrl, recentEnds: await deps.batches.recentEnds(batch.id) });
  return { ...view, rejected };
}

/**
 * `POST /v1/batches`: reads the request (`intake`, which stores uploaded files and lists
 * their keys in `stored`), then creates the batch once per Idempotency-Key. Nothing is left
 * behind when it fails: uploaded originals are deleted and the key is freed for a retry.
 */
export async function submitBatch(
  deps: SubmitDeps, request: Pick<FastifyRequest, 'id'> & { log: FastifyBaseLogger }, tenantId: string, idempotencyKey: string | undefined,
  intake: (stored: string[]) => Promise<BatchIntake>,
): Promise<StoredResponse & { replayed: boolean }> {
  const { idempotency, storage, config } = deps;
  const claim = idempotencyKey ? await idempotency.claim(tenantId, idempotencyKey) : { kind: 'new' as const };
  if (claim.kind === 'in_progress') throw requestInProgress();
  const stored: string[] = [];
  const dropUploads = () => Promise.allSettled(stored.map((key) => storage.delete(key)));
  try {
    const read = await intake(stored);
    if (read.items.length === 0) {
      const first = read.rejected.slice(0, 3).map(({ row, reason }) => `row ${row}: ${reason}`).join('; ');
      throw new ApiError('no_valid_items', `No item of the batch is valid${first ? ` (${first})` : ''}`, {}, { rejected: read.rejected });
    }
    if (read.dryRun) {
      // A dry run leaves nothing behind, its Idempotency-Key included (freed below).
      const estimate = await estimateBatch(deps, tenantId, read);
      if (idempotencyKey && claim.kind === 'new') await idempotency.release(tenantId, idempotencyKey);
      return { fingerprint: read.fingerprint, statusCode: 200, body: estimate, replayed: false };
    }
    if (claim.kind === 'done') {
      // A retry: the first request's batch stands; this request's uploads are not kept.
      await dropUploads();
      if (claim.response.fingerprint !== read.fingerprint) throw keyReused();
      return { ...claim.response, replayed: true };
    }
    const batch = await createBatch({ batches: deps.batches, fairEnqueue: fairEnqueueOf(deps) }, tenantId, read).catch((error: unknown) => {
      request.log.error({ err: error }, 'batch creation failed');
      throw unavailable();
    });
    const location = `${config.api.publicBaseUrl}/v1/batches/${batch.id}`;
    const answer = { fingerprint: read.fingerprint, statusCode: 202, location, body: await createdView(deps, batch, read.rejected) };
    if (idempotencyKey) await idempotency.complete(tenantId, idempotencyKey, answer);
    await deps.usage.add(tenantId, 'jobs', batch.total).catch(() => undefined);
    request.log.info({ batch_id: batch.id, items: batch.total, rejected: batch.rejected }, 'batch accepted');
    return { ...answer, replayed: false };
  } catch (error) {
    if (claim.kind !== 'done') await dropUploads();
    if (idempotencyKey && claim.kind === 'new') await idempotency.release(tenantId, idempotencyKey).catch(() => undefined);
    throw error;
  }
}
