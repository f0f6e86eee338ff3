import type { FastifyInstance, FastifyReply, onRequestAsyncHookHandler } from 'fastify';
import { newJobId, originalKey, toJobView, TERMINAL_STATUSES, type JobRecord } from '@cutout/shared';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { idempotencyKeyOf, keyReused, requestInProgress, requestFingerprint, type StoredResponse } from '../idempotency.ts';
import { checkJobField, fieldRulesOf, parseJobFields, JOB_FIELDS } from '../job-fields.ts';
import { preferredWaitMs } from '../job-waiter.ts';
import { receiveUpload } from '../uploads.ts';
import { queueSingleJob } from '../queueing.ts';

export interface Guards { canWrite: onRequestAsyncHookHandler; canRead: onRequestAsyncHookHandler }

export function jobRoutes(app: FastifyInstance, deps: AppDeps, { canWrite }: Guards): void {
  const { config, storage, jobs, idempotency, jobWaiter, images } = deps;
  const jobUrl = (id: string) => `${config.api.publicBaseUrl}/v1/jobs/${id}`;

  async function createJob(tenantId: string, upload: Awaited<ReturnType<typeof receiveUpload>>, id: string): Promise<JobRecord> {
    const record: JobRecord = {
      id, tenantId, status: 'queued', createdAt: new Date().toISOString(), attempts: 0, upstreamCalls: 0,
      originalKey: originalKey(tenantId, id), originalBytes: upload.original.bytes, originalContentType: upload.original.contentType,
      originalSha256: upload.original.sha256,
    };
    try {
      Object.assign(record, parseJobFields(upload.fields, fieldRulesOf(config)));
    } catch (error) {
      await storage.delete(record.originalKey).catch(() => undefined);
      throw error;
    }
    await queueSingleJob(deps, record);
    return record;
  }

  async function replay(reply: FastifyReply, stored: StoredResponse) {
    if (stored.location) reply.header('location', stored.location);
    return reply.status(stored.statusCode).header('idempotent-replayed', 'true').send(stored.body);
  }

  app.post('/v1/jobs', { onRequest: canWrite }, async (request, reply) => {
    const tenantId = tenantOf(request);
    const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key']);
    const waitMs = preferredWaitMs(request.headers.prefer);
    const claim = idempotencyKey ? await idempotency.claim(tenantId, idempotencyKey) : { kind: 'new' as const };
    if (claim.kind === 'in_progress') {
      throw requestInProgress();
    }

    const id = newJobId();
    let record: JobRecord;
    try {
      const upload = await receiveUpload(request, {
        storage, objectKey: originalKey(tenantId, id), maxBytes: config.api.maxUploadBytes, maxPixels: config.api.maxImagePixels, allowedFields: JOB_FIELDS, images,
        checkField: (name, value) => checkJobField(name, value, fieldRulesOf(config)),
      });
      const fingerprint = requestFingerprint(upload.original.sha256, upload.fields);
      if (claim.kind === 'done') {
        // A retry: the original stays the first request's; this upload is not kept.
        await storage.delete(originalKey(tenantId, id));
        if (claim.response.fingerprint !== fingerprint) {
          throw keyReused();
        }
        return replay(reply, claim.response);
      }
      record = await createJob(tenantId, upload, id);
      if (idempotencyKey) {
        const body = await toJobView(record, storage, config.api.resultUrlTtlMs);
        await idempotency.complete(tenantId, idempotencyKey, { fingerprint, statusCode: 202, location: jobUrl(id), body });
      }
    } catch (error) {
      if (idempotencyKey && claim.kind === 'new') await idempotency.release(tenantId, idempotencyKey).catch(() => undefined);
      throw error;
    }
    request.log.info({ job_id: id, bytes: record.originalBytes }, 'job accepted');

    reply.header('location', jobUrl(id));
    if (waitMs !== undefined) {
      reply.header('preference-applied', `wait=${waitMs / 1000}`);
      const ended = await jobWaiter.wait(id, waitMs, async () => TERMINAL_STATUSES.includes((await jobs.get(id))?.status ?? 'queued'));
      const latest = (ended && (await jobs.get(id))) || record;
      return reply.status(ended ? 200 : 202).send(await toJobView(latest, storage, config.api.resultUrlTtlMs));
    }
    return reply.status(202).send(await toJobView(record, storage, config.api.resultUrlTtlMs));
  });
}
