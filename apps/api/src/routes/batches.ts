import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sha256Hex, toBatchView, toJobView, type BatchRecord, type JobRecord } from '@cutout/shared';
import { decodeOffsetCursor, encodeOffsetCursor } from '../cursor.ts';
import { itemIdPage, type ItemFilter } from '../batches/item-pages.ts';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { ownBatch } from '../owned.ts';
import { ApiError, unavailable } from '../errors.ts';
import { idempotencyKeyOf, onceFor, type StoredResponse } from '../idempotency.ts';
import { parseJobFields } from '../job-fields.ts';
import { rerunItems, type RerunSelection } from '../batches/rerun.ts';
import { cancelBatchItems } from '../batches/cancel.ts';
import { createBatch } from '../batches/create.ts';
import { jsonIntake, multipartIntake, type BatchIntake, type IntakeLimits } from '../batches/intake.ts';
import { manifestFormat, manifestLines } from '../batches/results.ts';
import type { Guards } from './jobs.ts';

interface IdParams { Params: { id: string } }
const MAX_PAGE = 100;

/** JSON items may carry 4 KB of metadata each; the default 1 MB body limit fits ~5,000 bare URLs. */
const bodyLimitFor = (maxItems: number) => Math.max(1_048_576, maxItems * 5 * 1024);

export function batchRoutes(app: FastifyInstance, deps: AppDeps, { canRead, canWrite }: Guards): void {
  const { config, storage, jobs, batches, queues, idempotency } = deps;
  const batchUrl = (id: string) => `${config.api.publicBaseUrl}/v1/batches/${id}`;
  const fairEnqueue = { queue: queues.removeBg, scheduler: deps.fair, attempts: config.bybybg.maxAttempts, retryDelayMs: config.bybybg.retryDelayMs };
  const announceDeps = { batches, webhooks: queues.webhooks, webhookAttempts: config.webhooks.retryScheduleMs.length };

  async function view(batch: BatchRecord) {
    return toBatchView(batch, { publicBaseUrl: config.api.publicBaseUrl, recentEnds: await batches.recentEnds(batch.id) });
  }


  async function intakeOf(request: FastifyRequest, tenantId: string, stored: string[]): Promise<BatchIntake> {
    const limits: IntakeLimits = {
      storage, tenantId, policy: { allowPrivate: config.webhooks.allowPrivate },
      maxItems: config.api.maxBatchItems, maxBytes: config.api.maxUploadBytes, maxPixels: config.api.maxImagePixels,
    };
    if (request.isMultipart()) return multipartIntake(request, limits, stored);
    if (request.headers['content-type']?.startsWith('application/json')) return jsonIntake(request.body, limits);
    throw new ApiError(415, 'unsupported_media_type', 'Send JSON with "items", or multipart/form-data with a "manifest" CSV or "file" parts');
  }

  const replay = (reply: FastifyReply, stored: StoredResponse) =>
    reply.status(stored.statusCode).header('location', stored.location).header('idempotent-replayed', 'true').send(stored.body);

  app.post('/v1/batches', { preHandler: canWrite, bodyLimit: bodyLimitFor(config.api.maxBatchItems) }, async (request, reply) => {
    const tenantId = tenantOf(request);
    const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key']);
    const claim = idempotencyKey ? await idempotency.claim(tenantId, idempotencyKey) : { kind: 'new' as const };
    if (claim.kind === 'in_progress') {
      throw new ApiError(409, 'idempotency_request_in_progress', 'A request with this Idempotency-Key is still being processed; retry shortly', { 'retry-after': '1' });
    }
    const stored: string[] = [];
    const dropUploads = () => Promise.allSettled(stored.map((key) => storage.delete(key)));
    try {
      const intake = await intakeOf(request, tenantId, stored);
      if (claim.kind === 'done') {
        // A retry: the first request's batch stands; this request's uploads are not kept.
        await dropUploads();
        if (claim.response.fingerprint !== intake.fingerprint) {
          throw new ApiError(409, 'idempotency_key_reused', 'This Idempotency-Key was used with a different request in the last 24 hours');
        }
        return replay(reply, claim.response);
      }
      if (intake.items.length === 0) {
        if (idempotencyKey) await idempotency.release(tenantId, idempotencyKey);
        const first = intake.rejected.slice(0, 3).map(({ row, reason }) => `row ${row}: ${reason}`).join('; ');
        return reply.status(422).send({
          error: { code: 'no_valid_items', message: `No item of the batch is valid${first ? ` (${first})` : ''}`, request_id: request.id, rejected: intake.rejected },
        });
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

  app.get<IdParams>('/v1/batches/:id', { preHandler: canRead }, async (request) => view(await ownBatch(batches, request)));

  app.get<IdParams & { Querystring: { format?: string } }>('/v1/batches/:id/results', { preHandler: canRead }, async (request, reply) => {
    const batch = await ownBatch(batches, request);
    const format = manifestFormat(request.query.format, request.headers.accept);
    if (!format) throw new ApiError(400, 'invalid_request', 'format must be jsonl or csv');
    const lines = manifestLines({ batches, jobs, storage, resultUrlTtlMs: config.api.resultUrlTtlMs }, batch.id, format);
    return reply
      .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
      .header('content-disposition', `attachment; filename="${batch.id}.${format}"`)
      .send(Readable.from(lines));
  });

  app.get<IdParams & { Querystring: { limit?: string; cursor?: string; status?: string; review?: string } }>('/v1/batches/:id/jobs', { preHandler: canRead }, async (request) => {
    const batch = await ownBatch(batches, request);
    return batchJobPage(deps, batch.id, request.query);
  });

  app.post<IdParams>('/v1/batches/:id/rerun', { preHandler: canWrite }, async (request, reply) => {
    const source = await ownBatch(batches, request);
    const tenantId = tenantOf(request);
    const { selection, fields } = rerunRequest(request.body);
    const fingerprint = sha256Hex(JSON.stringify([source.id, selection, Object.entries(fields).sort()]));
    const answer = await onceFor(idempotency, tenantId, idempotencyKeyOf(request.headers['idempotency-key']), fingerprint, async () => {
      const settings = parseJobFields({ webhook_url: fields.webhook_url, options: fields.options } as Record<string, string>, { allowPrivate: config.webhooks.allowPrivate });
      const ids = selection === 'rejected'
        ? await deps.reviews.rejectedIds(source.id, 0, config.api.maxBatchItems)
        : await batches.endedIds(source.id, 'failed', 0, config.api.maxBatchItems);
      if (ids.length === 0) throw new ApiError(422, 'nothing_to_rerun', selection === 'rejected' ? 'No item of this batch is flagged as wrong' : 'No item of this batch failed');
      const { items, rejected, stored } = await rerunItems({ jobs, storage }, tenantId, ids);
      try {
        if (items.length === 0) throw new ApiError(422, 'nothing_to_rerun', `None of the ${ids.length} items can be rerun (${rejected[0]?.reason ?? 'gone'})`);
        // The source batch's options unless the request gives others; item events only when asked.
        const options = settings.options ?? (await jobs.get(ids[0]!))?.options;
        const intake = { items, rejected, webhookUrl: settings.webhookUrl, options, itemEvents: fields.item_events === 'true', fingerprint };
        const batch = await createBatch({ batches, fairEnqueue }, tenantId, intake, source.id).catch((error: unknown) => {
          request.log.error({ err: error }, 'batch rerun failed');
          throw unavailable();
        });
        await deps.usage.add(tenantId, 'jobs', batch.total).catch(() => undefined);
        request.log.info({ batch_id: batch.id, rerun_of: source.id, items: batch.total }, 'batch rerun accepted');
        return { statusCode: 202, location: batchUrl(batch.id), body: { ...(await view(batch)), rejected } };
      } catch (error) {
        await Promise.allSettled(stored.map((key) => storage.delete(key)));
        throw error;
      }
    });
    if (answer.replayed) reply.header('idempotent-replayed', 'true');
    return reply.status(answer.statusCode).header('location', answer.location).send(answer.body);
  });

  app.delete<IdParams>('/v1/batches/:id', { preHandler: canWrite }, async (request) => {
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
  const pageSize = Number(limit);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE) throw new ApiError(400, 'invalid_request', `limit must be 1 to ${MAX_PAGE}`);
  if (review !== undefined && review !== 'rejected') throw new ApiError(400, 'invalid_request', 'review must be rejected');
  if (status !== undefined && !BATCH_JOB_STATUSES.includes(status)) throw new ApiError(400, 'invalid_request', `status must be one of ${BATCH_JOB_STATUSES.join(', ')}`);
  const offset = decodeOffsetCursor(cursor);
  const ended = status === 'succeeded' || status === 'failed' || status === 'canceled';
  const filter: ItemFilter = review ? 'rejected' : ended ? status : 'all';
  const ids = await itemIdPage(deps, batchId, filter, offset, pageSize + 1);
  const records = await Promise.all(ids.slice(0, pageSize).map((id) => deps.jobs.get(id)));
  // Queued and processing are moments, not lists: those pages are the items page filtered.
  const wanted = records.filter((record): record is JobRecord => record !== null && (status === undefined || record.status === status));
  const data = await Promise.all(wanted.map((record) => toJobView(record, deps.storage, deps.config.api.resultUrlTtlMs)));
  const more = ids.length > pageSize;
  return { data, next_cursor: more ? encodeOffsetCursor(offset + pageSize) : null };
}

const BATCH_JOB_STATUSES: readonly string[] = ['queued', 'processing', 'succeeded', 'failed', 'canceled'];

/** `{ items: "rejected" | "failed", options?, webhook_url?, item_events? }`, fields as strings. */
function rerunRequest(body: unknown): { selection: RerunSelection; fields: Record<string, string> } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'invalid_request', 'Send JSON: {"items": "rejected" | "failed", "options"?, "webhook_url"?, "item_events"?}');
  const { items, ...rest } = body as Record<string, unknown>;
  if (items !== 'rejected' && items !== 'failed') throw new ApiError(400, 'invalid_request', 'items must be "rejected" (flagged by a reviewer) or "failed"');
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(rest)) {
    if (!['options', 'webhook_url', 'item_events'].includes(name)) throw new ApiError(400, 'unknown_field', `Unknown field "${name.slice(0, 64)}"; a rerun takes items, options, webhook_url and item_events`);
    fields[name] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  if (fields.item_events !== undefined && !['true', 'false'].includes(fields.item_events)) throw new ApiError(422, 'invalid_item_events', 'item_events must be true or false');
  return { selection: items, fields };
}
