import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sha256Hex, toBatchView, toJobView, type BatchRecord } from '@cutout/shared';
import { itemRecordPage, type ItemFilter } from '../batches/item-pages.ts';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { ownBatch } from '../owned.ts';
import { ApiError } from '../errors.ts';
import { idempotencyKeyOf, onceFor } from '../idempotency.ts';
import { rerunBatch, rerunFields, type RerunSelection } from '../reruns.ts';
import { cancelBatchItems } from '../batches/cancel.ts';
import { STREAMED_BODY_TYPES } from '../batches/intake.ts';
import { submitBatch } from '../batches/submit.ts';
import { leaveBodiesUnread } from '../json-body.ts';
import { manifestFormat, manifestLines } from '../batches/results.ts';
import type { Guards } from './jobs.ts';

interface IdParams { Params: { id: string } }

export function batchRoutes(app: FastifyInstance, deps: AppDeps, { canRead, canWrite }: Guards): void {
  const { config, storage, jobs, batches, queues, idempotency } = deps;
  const batchUrl = (id: string) => `${config.api.publicBaseUrl}/v1/batches/${id}`;
  const announceDeps = { batches, outbox: deps.webhookOutbox };

  async function view(batch: BatchRecord) {
    return toBatchView(batch, { publicBaseUrl: config.api.publicBaseUrl, recentEnds: await batches.recentEnds(batch.id) });
  }


  // The body (JSON items, a manifest, a form) is read as it streams in, never parsed whole by fastify.
  void app.register(async (scope) => {
    leaveBodiesUnread(scope, STREAMED_BODY_TYPES);
    scope.post('/v1/batches', { onRequest: canWrite }, (request, reply) => submitBatch(deps, request, reply));
  });

  app.get<IdParams>('/v1/batches/:id', { onRequest: canRead }, async (request) => view(await ownBatch(batches, request)));

  app.get<IdParams & { Querystring: { format?: string } }>('/v1/batches/:id/results', { onRequest: canRead }, async (request, reply) => {
    const batch = await ownBatch(batches, request);
    const format = manifestFormat(request.query.format, request.headers.accept);
    if (!format) throw new ApiError('invalid_request', 'format must be jsonl or csv');
    const lines = manifestLines({ batches, jobs, storage, resultUrlTtlMs: config.api.resultUrlTtlMs }, batch.id, format, batch.renditionNames);
    return reply
      .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
      .header('content-disposition', `attachment; filename="${batch.id}.${format}"`)
      .send(Readable.from(lines));
  });

  app.get<IdParams & { Querystring: { limit?: string; cursor?: string; status?: string; review?: string; quality?: string } }>('/v1/batches/:id/jobs', { onRequest: canRead }, async (request) => {
    const batch = await ownBatch(batches, request);
    return batchJobPage(deps, batch.id, request.query);
  });

  app.post<IdParams>('/v1/batches/:id/rerun', { onRequest: canWrite }, async (request, reply) => {
    const source = await ownBatch(batches, request);
    const { selection, fields } = rerunRequest(request.body);
    const fingerprint = sha256Hex(JSON.stringify([source.id, selection, Object.entries(fields).sort()]));
    const answer = await onceFor(idempotency, source.tenantId, idempotencyKeyOf(request.headers['idempotency-key']), fingerprint, async () => {
      const { batch, rejected } = await rerunBatch(deps, source, selection, fields, request.log);
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
 * (in the order they ended), or those a reviewer flagged (`review=rejected`), or those
 * the automatic checks flagged (`quality=flagged`, in the order they ended).
 */
export async function batchJobPage(
  deps: Pick<AppDeps, 'batches' | 'jobs' | 'storage' | 'config' | 'reviews'>, batchId: string,
  { limit = '20', cursor, status, review, quality }: { limit?: string; cursor?: string; status?: string; review?: string; quality?: string },
) {
  if (review !== undefined && review !== 'rejected') throw new ApiError('invalid_request', 'review must be rejected');
  if (quality !== undefined && quality !== 'flagged') throw new ApiError('invalid_request', 'quality must be flagged');
  if (review !== undefined && quality !== undefined) throw new ApiError('invalid_request', 'Filter by review or by quality, not both');
  if (status !== undefined && !BATCH_JOB_STATUSES.includes(status)) throw new ApiError('invalid_request', `status must be one of ${BATCH_JOB_STATUSES.join(', ')}`);
  const ended = status === 'succeeded' || status === 'failed' || status === 'canceled';
  const filter: ItemFilter = review ? 'rejected' : quality ? 'quality_flagged' : ended ? status : 'all';
  const { records, nextCursor } = await itemRecordPage(deps, batchId, filter, { limit, cursor });
  // Queued and processing are moments, not lists: those pages are the items page filtered.
  const wanted = records.filter((record) => status === undefined || record.status === status);
  const data = await Promise.all(wanted.map((record) => toJobView(record, deps.storage, deps.config.api.resultUrlTtlMs)));
  return { data, next_cursor: nextCursor };
}

const BATCH_JOB_STATUSES: readonly string[] = ['queued', 'processing', 'succeeded', 'failed', 'canceled'];

const RERUN_SELECTIONS: readonly string[] = ['rejected', 'quality_flagged', 'failed'];

/** `{ items: "rejected" | "quality_flagged" | "failed", options?, renditions?, webhook_url?, item_events? }`, fields as strings. */
function rerunRequest(body: unknown): { selection: RerunSelection; fields: Record<string, string> } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError('invalid_request', 'Send JSON: {"items": "rejected" | "quality_flagged" | "failed", "options"?, "renditions"?, "webhook_url"?, "item_events"?}');
  const { items, ...rest } = body as Record<string, unknown>;
  if (typeof items !== 'string' || !RERUN_SELECTIONS.includes(items)) {
    throw new ApiError('invalid_request', 'items must be "rejected" (flagged by a reviewer), "quality_flagged" (by the automatic checks) or "failed"');
  }
  const fields = rerunFields(rest, ['options', 'renditions', 'webhook_url', 'item_events'], 'unknown_field');
  if (fields.item_events !== undefined && !['true', 'false'].includes(fields.item_events)) throw new ApiError('invalid_item_events', 'item_events must be true or false');
  return { selection: items as RerunSelection, fields };
}
