import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';
import { ApiError } from '../errors.ts';
import { ownJob } from '../owned.ts';
import type { Guards } from './jobs.ts';

interface RenditionParams { Params: { id: string; name: string } }

/** `GET /v1/jobs/:id/renditions/:name`: a redirect to a fresh presigned URL of one rendition. */
export function renditionRoutes(app: FastifyInstance, { jobs, storage, config }: AppDeps, { canRead }: Pick<Guards, 'canRead'>): void {
  app.get<RenditionParams>('/v1/jobs/:id/renditions/:name', { onRequest: canRead }, async (request, reply) => {
    const record = await ownJob(jobs, request);
    const { name } = request.params;
    if (!record.renditionPlans?.some((plan) => plan.name === name)) throw new ApiError('not_found', `The job has no rendition named "${name.slice(0, 32)}"`);
    const stored = record.renditions?.[name];
    if (record.status !== 'succeeded' || !stored) {
      throw new ApiError('result_not_ready', `The job is ${record.status}; its renditions exist once it has succeeded`);
    }
    if ('error' in stored) throw new ApiError('rendition_failed', `The rendition "${name}" could not be made: ${stored.error}`);
    return reply.redirect(await storage.presign(stored.key, config.api.resultUrlTtlMs), 302);
  });
}
