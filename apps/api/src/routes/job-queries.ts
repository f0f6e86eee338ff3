import type { FastifyInstance } from 'fastify';
import { announceBatchIfEnded, TERMINAL_STATUSES, toJobView, type JobRecord, type JobStatus } from '@cutout/shared';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { ownJob } from '../owned.ts';
import { ApiError, notFound } from '../errors.ts';
import { jobEtag, queueHold } from '../job-hold.ts';
import { preferredWaitMs } from '../job-waiter.ts';
import { decodeCursor, encodeCursor, pageSizeOf } from '../cursor.ts';
import type { Guards } from './jobs.ts';
import { batchJobPage } from './batches.ts';

const STATUSES: readonly JobStatus[] = ['queued', 'processing', 'succeeded', 'failed', 'canceled'];

interface IdParams { Params: { id: string } }

export function jobQueryRoutes(app: FastifyInstance, deps: AppDeps, { canRead, canWrite }: Guards): void {
  const { config, storage, jobs, queues, jobWaiter } = deps;


  app.get<IdParams>('/v1/jobs/:id', { onRequest: canRead }, async (request, reply) => {
    // The record and the queue's hold are read together: one round trip for a polling client.
    const tenantId = tenantOf(request);
    let [record, hold] = await Promise.all([ownJob(jobs, request), queueHold(deps, tenantId)]);
    const waitMs = preferredWaitMs(request.headers.prefer);
    if (waitMs !== undefined && !TERMINAL_STATUSES.includes(record.status)) {
      reply.header('preference-applied', `wait=${waitMs / 1000}`);
      await jobWaiter.wait(record.id, waitMs, async () => TERMINAL_STATUSES.includes((await jobs.get(record.id))?.status ?? 'queued'));
      [record, hold] = await Promise.all([jobs.get(record.id).then((latest) => latest ?? record), queueHold(deps, tenantId)]);
    }
    const held = record.status === 'queued' ? hold : null;
    const etag = jobEtag(record, held);
    reply.header('etag', etag).header('cache-control', 'private, no-cache');
    if (request.headers['if-none-match'] === etag) return reply.status(304).send();
    return toJobView(record, storage, config.api.resultUrlTtlMs, held);
  });

  app.get<{ Querystring: { status?: string; limit?: string; cursor?: string; batch_id?: string } }>('/v1/jobs', { onRequest: canRead }, async (request) => {
    const tenantId = tenantOf(request);
    const { status, limit = '20', cursor, batch_id: batchId } = request.query;
    if (status !== undefined && !STATUSES.includes(status as JobStatus)) {
      throw new ApiError(400, 'invalid_request', `status must be one of ${STATUSES.join(', ')}`);
    }
    if (batchId !== undefined) {
      // A batch's jobs in submission order (its item list), not the tenant's newest-first index.
      const batch = await deps.batches.get(batchId);
      if (!batch || batch.tenantId !== tenantId) throw notFound('Batch');
      return batchJobPage(deps, batchId, { limit, cursor, status });
    }
    const pageSize = pageSizeOf(limit);
    let position = cursor === undefined ? undefined : decodeCursor(cursor);

    const page: JobRecord[] = [];
    let more = true;
    // Filtering by status may skip entries: read on until the page is full or the index ends.
    while (page.length < pageSize && more) {
      const entries = await jobs.listIds(tenantId, pageSize * 2, position);
      const records = await Promise.all(entries.map((entry) => jobs.get(entry.id)));
      await jobs.forget(tenantId, entries.filter((_, i) => !records[i]).map((entry) => entry.id));
      let used = 0;
      for (const [i, entry] of entries.entries()) {
        if (page.length === pageSize) break;
        position = entry;
        used += 1;
        const record = records[i];
        if (record && (!status || record.status === status)) page.push(record);
      }
      more = entries.length === pageSize * 2 || used < entries.length;
    }
    const last = page.at(-1);
    return {
      data: await Promise.all(page.map((record) => toJobView(record, storage, config.api.resultUrlTtlMs))),
      next_cursor: more && last ? encodeCursor({ createdMs: Date.parse(last.createdAt), id: last.id }) : null,
    };
  });

  app.delete<IdParams>('/v1/jobs/:id', { onRequest: canWrite }, async (request) => {
    const record = await ownJob(jobs, request);
    if (record.status === 'canceled') return toJobView(record, storage, config.api.resultUrlTtlMs);
    const canceled = await jobs.transition(record.id, ['queued'], { status: 'canceled', finishedAt: new Date().toISOString(), waitingReason: '' });
    if (!canceled) {
      const now = (await jobs.get(record.id))?.status ?? record.status;
      throw new ApiError(409, now === 'processing' ? 'job_already_started' : 'job_finished', `The job is ${now} and can no longer be canceled`);
    }
    // The worker skips a canceled record anyway; removing the queue entry just saves it the look.
    await queues.removeBg.remove(record.id).catch(() => undefined);
    request.log.info({ job_id: record.id }, 'job canceled');
    if (canceled.batchId) await announceBatchIfEnded({ batches: deps.batches, webhooks: queues.webhooks, webhookAttempts: config.webhooks.retryScheduleMs.length }, canceled.batchId);
    return toJobView(canceled, storage, config.api.resultUrlTtlMs);
  });

  app.get<IdParams>('/v1/jobs/:id/result', { onRequest: canRead }, async (request, reply) => {
    const record = await ownJob(jobs, request);
    if (record.status !== 'succeeded' || !record.resultKey) {
      throw new ApiError(409, 'result_not_ready', `The job is ${record.status}; a result exists once it has succeeded`);
    }
    return reply.redirect(await storage.presign(record.resultKey, config.api.resultUrlTtlMs), 302);
  });
}
