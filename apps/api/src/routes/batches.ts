import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sha256Hex, toBatchView, toJobView, type BatchRecord } from '@cutout/shared';
import { itemRecordPage, type ItemFilter } from '../batches/item-pages.ts';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { ownBatch } from '../owned.ts';
import { ApiError, unavailable } from '../errors.ts';
import { idempotencyKeyOf, keyReused, requestInProgress, onceFor, type StoredResponse } from '../idempotency.ts';
import { rerunBatch, rerunFields, type RerunSelection } from '../reruns.ts';
import { cancelBatchItems } from '../batches/cancel.ts';
import { createBatch } from '../batches/create.ts';
import { fairEnqueueOf } from '../queueing.ts';
import { jsonIntake, multipartIntake, type BatchIntake, type IntakeLimits } from '../batches/intake.ts';
import { makeDryRunStorage } from '../batches/dry-run-storage.ts';
import { estimateBatch } from '../batches/estimate.ts';
import type { RejectedRow } from '../batches/items.ts';
import { manifestFormat, manifestLines } from '../batches/results.ts';
import type { Guards } from './jobs.ts';

interface IdParams { Params: { id: string } }

/** JSON items may carry 4 KB of metadata each; the default 1 MB body limit fits ~5,000 bare URLs. */
const bodyLimitFor = (maxItems: number) => Math.max(1_048_576, maxItems * 5 * 1024);

export function batchRoutes(app: FastifyInstance, deps: AppDeps, { canRead, canWrite }: Guards): void {
  const { config, storage, jobs, batches, queues, idempotency } = deps;
  const batchUrl = (id: string) => `${config.api.publicBaseUrl}/v1/batches/${id}`;
  const fairEnqueue = fairEnqueueOf(deps);
  const announceDeps = { batches, webhooks: queues.webhooks, webhookAttempts: config.webhooks.retryScheduleMs.length };

  async function view(batch: BatchRecord) {
    return toBatchView(batch, { publicBaseUrl: config.api.publicBaseUrl, recentEnds: await batches.recentEnds(batch.id) });
  }


  async function intakeOf(request: FastifyRequest, tenantId: string, stored: string[]): Promise<BatchIntake> {
    const limits: IntakeLimits = {
      storage, tenantId, policy: { allowPrivate: config.webhooks.allowPrivate },
      maxItems: config.api.maxBatchItems, maxBytes: config.api.maxUploadBytes, maxPixels: config.api.maxImagePixels,
      dryRunStorage: makeDryRunStorage(),
    };
    if (request.isMultipart()) return multipartIntake(request, limits, stored);
    if (request.headers['content-type']?.startsWith('application/json')) return jsonIntake(request.body, limits);
    throw new ApiError(415, 'unsupported_media_type', 'Send JSON with "items", or multipart/form-data with a "manifest" CSV or "file" parts');
  }

  const noValidItems = (request: FastifyRequest, reply: FastifyReply, rejected: RejectedRow[]) => {
    const first = rejected.slice(0, 3).map(({ row, reason }) => `row ${row}: ${reason}`).join('; ');
    return reply.status(422).send({
      error: { code: 'no_valid_items', message: `No item of the batch is valid${first ? ` (${first})` : ''}`, request_id: request.id, rejected },
    });
  };

  const replay = (reply: FastifyReply, stored: StoredResponse) =>
    reply.status(stored.statusCode).header('location', stored.location).header('idempotent-replayed', 'true').send(stored.body);

  app.post('/v1/batches', { onRequest: canWrite, bodyLimit: bodyLimitFor(config.api.maxBatchItems) }, async (request, reply) => {
    const tenantId = tenantOf(request);
    const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key']);
    const claim = idempotencyKey ? await idempotency.claim(tenantId, idempotencyKey) : { kind: 'new' as const };
    if (claim.kind === 'in_progress') {
      throw requestInProgress();
    }
    const stored: string[] = [];
    const dropUploads = () => Promise.allSettled(stored.map((key) => storage.delete(key)));
    try {
      const intake = await intakeOf(request, tenantId, stored);
      if (intake.dryRun) {
        // A dry run leaves nothing behind, its Idempotency-Key included.
        if (idempotencyKey && claim.kind === 'new') await idempotency.release(tenantId, idempotencyKey);
        return intake.items.length === 0 ? noValidItems(request, reply, intake.rejected) : estimateBatch(deps, tenantId, intake);
      }
      if (claim.kind === 'done') {
        // A retry: the first request's batch stands; this request's uploads are not kept.
        await dropUploads();
        if (claim.response.fingerprint !== intake.fingerprint) {
          throw keyReused();
        }
        return replay(reply, claim.response);
      }
      if (intake.items.length === 0) {
        if (idempotencyKey) await idempotency.release(tenantId, idempotencyKey);
        return noValidItems(request, reply, intake.rejected);
      }
      let batch: BatchRecord;
      try {
        batch = await createBatch({ batches, fairEnqueue }, tenantId, intake);
      } catch (error) {
        request.log.error({ err: error }, 'batch creation failed');
        throw unavailable();
      }
      const body = { ...(await view(batch)), rejected: intake.rejected };
      if (idempotencyKey) await idempotency.complete(tenantId, idempotencyKey, { fingerprint: intake.fingerprint, statusCode: 202, location: batchUrl(batch.id), body });
      await deps.usage.add(tenantId, 'jobs', batch.total).catch(() => undefined);
      request.log.info({ batch_id: batch.id, items: batch.total, rejected: batch.rejected }, 'batch accepted');
      return reply.status(202).header('location', batchUrl(batch.id)).send(body);
    } catch (error) {
      if (claim.kind !== 'done') await dropUploads();
      if (idempotencyKey && claim.kind === 'new') await idempotency.release(tenantId, idempotencyKey).catch(() => undefined);
      throw error;
    }
  });

  app.get<IdParams>('/v1/batches/:id', { onRequest: canRead }, async (request) => view(await ownBatch(batches, request)));

  app.get<IdParams & { Querystring: { format?: string } }>('/v1/batches/:id/results', { onRequest: canRead }, async (request, reply) => {
    const batch = await ownBatch(batches, request);
    const format = manifestFormat(request.query.format, request.headers.accept);
    if (!format) throw new ApiError(400, 'invalid_request', 'format must be jsonl or csv');
    const lines = manifestLines({ batches, jobs, storage, resultUrlTtlMs: config.api.resultUrlTtlMs }, batch.id, format);
    return reply
      .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
      .header('content-disposition', `attachment; filename="${batch.id}.${format}"`)
      .send(Readable.from(lines));
  });

  app.get<IdParams & { Querystring: { limit?: string; cursor?: string; status?: string; review?: string } }>('/v1/batches/:id/jobs', { onRequest: canRead }, async (request) => {
    const batch = await ownBatch(batches, request);
    return batchJobPage(deps, batch.id, request.query);
  });

  app.post<IdParams>('/v1/batches/:id/rerun', { onRequest: canWrite }, async (request, reply) => {
    const source = await ownBatch(batches, request);
    const { selection, fields } = rerunRequest(request.body);
    const fingerprint = sha256Hex(JSON.stringify([source.id, selection, Object.entries(fields).sort()]));
    const answer = await onceFor(idempotency, source.tenantId, idempotencyKeyOf(request.headers['idempotency-key']), fingerprint, async () => {
      const { batch, rejected } = await rerunBatch(deps, source, selection, fields, fingerprint, request.log);
      request.log.info({ batch_id: batch.id, rerun_of: source.id, items: batch.total }, 'batch rerun accepted');
      return { statusCode: 202, location: batchUrl(batch.id), body: { ...(await view(batch)), rejected } };
    });
    if (answer.replayed) reply.header('idempotent-replayed', 'true');
    return reply.status(answer.statusCode).header('location', answer.location).send(answer.body);
  });

  app.delete<IdParams>('/v1/batches/:id', { onRequest: canWrite }, async (request) => {
    const batch = await ownBatch(batches, request);
    if (batch.status === 'processing') {
      await batches.markCanceled(batch.id);
      const canceled = await cancelBatchItems({ ...announceDeps, jobs, removeBg: queues.removeBg }, batch.id);
      request.log.info({ batch_id: batch.id, canceled }, 'batch canceled');
    }
    return view((await batches.get(batch.id)) ?? batch);
  });
}

/**
 * A page of a batch's jobs: all in submission order, or those that ended with `status`
 * (in the order they ended), or those a reviewer flagged (`review=rejected`).
 */
export async function batchJobPage(
  deps: Pick<AppDeps, 'batches' | 'jobs' | 'storage' | 'config' | 'reviews'>, batchId: string,
  { limit = '20', cursor, status, review }: { limit?: string; cursor?: string; status?: string; review?: string },
) {
  if (review !== undefined && review !== 'rejected') throw new ApiError(400, 'invalid_request', 'review must be rejected');
  if (status !== undefined && !BATCH_JOB_STATUSES.includes(status)) throw new ApiError(400, 'invalid_request', `status must be one of ${BATCH_JOB_STATUSES.join(', ')}`);
  const ended = status === 'succeeded' || status === 'failed' || status === 'canceled';
  const filter: ItemFilter = review ? 'rejected' : ended ? status : 'all';
  const { records, nextCursor } = await itemRecordPage(deps, batchId, filter, { limit, cursor });
  // Queued and processing are moments, not lists: those pages are the items page filtered.
  const wanted = records.filter((record) => status === undefined || record.status === status);
  const data = await Promise.all(wanted.map((record) => toJobView(record, deps.storage, deps.config.api.resultUrlTtlMs)));
  return { data, next_cursor: nextCursor };
}

const BATCH_JOB_STATUSES: readonly string[] = ['queued', 'processing', 'succeeded', 'failed', 'canceled'];

/** `{ items: "rejected" | "failed", options?, webhook_url?, item_events? }`, fields as strings. */
function rerunRequest(body: unknown): { selection: RerunSelection; fields: Record<string, string> } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'invalid_request', 'Send JSON: {"items": "rejected" | "failed", "options"?, "webhook_url"?, "item_events"?}');
  const { items, ...rest } = body as Record<string, unknown>;
  if (items !== 'rejected' && items !== 'failed') throw new ApiError(400, 'invalid_request', 'items must be "rejected" (flagged by a reviewer) or "failed"');
  const fields = rerunFields(rest, ['options', 'webhook_url', 'item_events'], 'unknown_field');
  if (fields.item_events !== undefined && !['true', 'false'].includes(fields.item_events)) throw new ApiError(422, 'invalid_item_events', 'item_events must be true or false');
  return { selection: items, fields };
}
