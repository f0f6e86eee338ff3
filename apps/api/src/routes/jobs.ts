import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { newJobId, originalKey, sha256Hex } from '@cutout/shared/infra';
import type { JobRecord } from '@cutout/shared/stores';
import { isTerminal, toJobView } from '@cutout/shared/views';
import { tenantOf } from '../auth/authenticate.ts';
import { routeOf } from '../contract/register.ts';
import { jobOperations } from '../contract/jobs.ts';
import type { RouteOptions } from '../deps.ts';
import { ApiError, notFound } from '../http/errors.ts';
import { applyAllowanceCount } from '../http/rate-limit.ts';
import { keyReused, requestInProgress, type StoredResponse } from '../http/idempotency.ts';
import { jobEtag } from '../jobs/etag.ts';
import { queueHold } from '../jobs/hold.ts';
import { preferredWaitMs } from '../jobs/waiter.ts';
import { jobPage } from '../jobs/list.ts';
import { cancelJob } from '../jobs/cancel.ts';
import { ownJob } from '../http/owned.ts';
import { queueSingleJob } from '../jobs/queueing.ts';
import { rerunJob } from '../jobs/reruns.ts';
import { receiveMultipartUpload, receiveUrlUpload } from '../intake/uploads.ts';

/** Jobs: submit, list, read (and wait for), cancel, fetch the result and renditions, rerun. */
export const jobRoutes: FastifyPluginAsync<RouteOptions> = async (plugin, { deps, guards, contract }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  const ops = jobOperations(contract);
  const { config, storage, jobs, idempotency, jobWaiter, images } = deps;
  const jobUrl = (id: string) => `${config.api.publicBaseUrl}/v1/jobs/${id}`;
  const view = (record: JobRecord, held?: Parameters<typeof toJobView>[3]) =>
    toJobView(record, storage, config.api.resultUrlTtlMs, held);
  const replay = (reply: FastifyReply, stored: StoredResponse) =>
    reply
      .status(stored.statusCode)
      .headers(stored.location ? { location: stored.location } : {})
      .header('idempotent-replayed', 'true')
      .send(stored.body);

  /** Waits up to `Prefer: wait=N` for the job to end; the record as it then is, and whether it ended. */
  async function waitFor(
    record: JobRecord,
    prefer: string | undefined,
    reply: FastifyReply,
  ): Promise<{ record: JobRecord; ended: boolean }> {
    const waitMs = preferredWaitMs(prefer);
    if (waitMs === undefined || isTerminal(record.status)) return { record, ended: isTerminal(record.status) };
    reply.header('preference-applied', `wait=${waitMs / 1000}`);
    const ended = await jobWaiter.wait(record.id, waitMs, async () =>
      isTerminal((await jobs.get(record.id))?.status ?? 'queued'),
    );
    return { record: (await jobs.get(record.id)) ?? record, ended };
  }

  app.route({
    ...routeOf(ops.createJob, guards),
    handler: async (request, reply) => {
      const tenantId = tenantOf(request);
      const key = request.headers['idempotency-key'];
      const claim = key ? await idempotency.claim(tenantId, key) : { kind: 'new' as const };
      if (claim.kind === 'in_progress') throw requestInProgress();
      const id = newJobId();
      const target = {
        storage,
        objectKey: originalKey(tenantId, id),
        maxBytes: config.api.maxUploadBytes,
        maxPixels: config.api.maxImagePixels,
        images,
      };
      let record: JobRecord;
      try {
        const upload = request.isMultipart()
          ? await receiveMultipartUpload(request, {
              ...target,
              fields: ops.createJob.requestBody.content['multipart/form-data'],
            })
          : await receiveUrlUpload(request.body as z.output<typeof ops.createJob.body>, target);
        const fingerprint = sha256Hex(JSON.stringify([upload.original.sha256, upload.fields]));
        if (claim.kind === 'done') {
          // A retry: the original stays the first request's; this upload is not kept.
          await storage.delete(target.objectKey);
          if (claim.response.fingerprint !== fingerprint) throw keyReused();
          return replay(reply, claim.response);
        }
        const { webhook_url: webhookUrl, metadata, options, renditions: renditionPlans } = upload.fields;
        record = {
          id,
          tenantId,
          status: 'queued',
          createdAt: new Date().toISOString(),
          attempts: 0,
          upstreamCalls: 0,
          originalKey: target.objectKey,
          originalBytes: upload.original.bytes,
          originalContentType: upload.original.contentType,
          originalSha256: upload.original.sha256,
          webhookUrl,
          metadata,
          options,
          renditionPlans,
        };
        await queueSingleJob(deps, record);
        if (key)
          await idempotency.complete(tenantId, key, {
            fingerprint,
            statusCode: 202,
            location: jobUrl(id),
            body: await view(record),
          });
      } catch (error) {
        if (key && claim.kind === 'new') await idempotency.release(tenantId, key).catch(() => undefined);
        throw error;
      }
      request.log.info({ job_id: id, bytes: record.originalBytes }, 'job accepted');
      const { record: latest, ended } = await waitFor(record, request.headers.prefer, reply);
      return reply
        .status(ended ? 200 : 202)
        .header('location', jobUrl(id))
        .send(await view(latest));
    },
  });

  app.route({
    ...routeOf(ops.listJobs, guards),
    handler: async (request) => jobPage(deps, tenantOf(request), request.query),
  });

  const getJob = routeOf(ops.getJob, guards);
  app.route({
    ...getJob,
    config: { ...getJob.config, allowanceInRead: true },
    handler: async (request, reply) => {
      // The key's allowance, the record and the queue's hold in one command: a polling client's every request.
      const tenantId = tenantOf(request);
      const deferred = request.deferredAllowance;
      const {
        record: owned,
        hold,
        counted,
      } = await deps.jobStatus.read(request.params.id, tenantId, { allowance: deferred?.terms });
      if (deferred && counted) {
        deferred.counted = true;
        applyAllowanceCount(reply, deferred.terms, counted);
      }
      // Another tenant's job is indistinguishable from a missing one.
      if (!owned || owned.tenantId !== tenantId) throw notFound('Job');
      const waited = await waitFor(owned, request.headers.prefer, reply);
      const held =
        waited.record.status !== 'queued' ? null : waited.record === owned ? hold : await queueHold(deps, tenantId);
      const etag = jobEtag(waited.record, held);
      reply.header('etag', etag).header('cache-control', 'private, no-cache');
      if (request.headers['if-none-match'] === etag) return (reply as FastifyReply).status(304).send();
      return view(waited.record, held);
    },
  });

  app.route({
    ...routeOf(ops.cancelJob, guards),
    handler: async (request) => {
      const record = await cancelJob(deps, await ownJob(jobs, request));
      request.log.info({ job_id: record.id }, 'job canceled');
      return view(record);
    },
  });

  app.route({
    ...routeOf(ops.getJobResult, guards),
    handler: async (request, reply) => {
      const record = await ownJob(jobs, request);
      if (record.status !== 'succeeded' || !record.resultKey)
        throw new ApiError('result_not_ready', `The job is ${record.status}; a result exists once it has succeeded`);
      return reply.redirect(await storage.presign(record.resultKey, config.api.resultUrlTtlMs), 302);
    },
  });

  app.route({
    ...routeOf(ops.getJobRendition, guards),
    handler: async (request, reply) => {
      const record = await ownJob(jobs, request);
      const { name } = request.params;
      if (!record.renditionPlans?.some((plan) => plan.name === name))
        throw new ApiError('not_found', `The job has no rendition named "${name.slice(0, 32)}"`);
      const stored = record.renditions?.[name];
      if (record.status !== 'succeeded' || !stored)
        throw new ApiError(
          'result_not_ready',
          `The job is ${record.status}; its renditions exist once it has succeeded`,
        );
      if ('error' in stored)
        throw new ApiError('rendition_failed', `The rendition "${name}" could not be made: ${stored.error}`);
      return reply.redirect(await storage.presign(stored.key, config.api.resultUrlTtlMs), 302);
    },
  });

  app.route({
    ...routeOf(ops.rerunJob, guards),
    handler: async (request, reply) => {
      const source = await ownJob(jobs, request);
      const record = await rerunJob(deps, source, request.body ?? {});
      request.log.info({ job_id: record.id, rerun_of: source.id }, 'job rerun accepted');
      return reply
        .status(202)
        .header('location', jobUrl(record.id))
        .send(await view(record));
    },
  });
};
