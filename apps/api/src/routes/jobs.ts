import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import { newJobId, originalKey, removeBgJobOptions, toJobView, type JobRecord, type UpstreamState } from '@cutout/shared';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { notFound, unavailable } from '../errors.ts';
import { receiveUpload } from '../uploads.ts';
import { parseJobFields, JOB_FIELDS } from '../job-fields.ts';

interface Guards { canWrite: preHandlerAsyncHookHandler; canRead: preHandlerAsyncHookHandler }

/** Why every queued job waits right now, if the workers hold the whole queue. */
async function queueHold(upstream: UpstreamState): Promise<string | null> {
  if (await upstream.keyProblem()) return 'upstream_unauthorized';
  if ((await upstream.pauseRemainingMs()) > 0) return 'upstream_rate_limited';
  return null;
}

export function jobRoutes(app: FastifyInstance, { config, storage, jobs, queues, upstream }: AppDeps, { canWrite, canRead }: Guards): void {
  const jobUrl = (id: string) => `${config.api.publicBaseUrl}/v1/jobs/${id}`;

  app.post('/v1/jobs', { preHandler: canWrite }, async (request, reply) => {
    const tenantId = tenantOf(request);
    const id = newJobId();
    const objectKey = originalKey(tenantId, id);
    const upload = await receiveUpload(request, { storage, objectKey, maxBytes: config.api.maxUploadBytes, allowedFields: JOB_FIELDS });
    const record: JobRecord = {
      id, tenantId, status: 'queued', createdAt: new Date().toISOString(), attempts: 0, upstreamCalls: 0,
      originalKey: objectKey, originalBytes: upload.original.bytes, originalContentType: upload.original.contentType,
      originalSha256: upload.original.sha256,
    };
    try {
      Object.assign(record, parseJobFields(upload.fields));
      await jobs.create(record);
      await queues.removeBg.add('remove-bg', { jobId: id, tenantId }, removeBgJobOptions(id, { attempts: config.bybybg.maxAttempts, retryDelayMs: config.bybybg.retryDelayMs }));
    } catch (error) {
      // Nothing half-written: a job that is not queued leaves neither record nor object.
      await Promise.allSettled([storage.delete(objectKey), jobs.remove(record)]);
      throw error instanceof Error && 'statusCode' in error ? error : unavailable();
    }
    request.log.info({ jobId: id, bytes: record.originalBytes }, 'job accepted');
    return reply.status(202).header('location', jobUrl(id)).send(await toJobView(record, storage, config.api.resultUrlTtlMs));
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', { preHandler: canRead }, async (request) => {
    const record = await jobs.get(request.params.id);
    // Another tenant's job is indistinguishable from a missing one.
    if (!record || record.tenantId !== tenantOf(request)) throw notFound('Job');
    const held = record.status === 'queued' ? await queueHold(upstream) : null;
    return toJobView(record, storage, config.api.resultUrlTtlMs, held);
  });
}
