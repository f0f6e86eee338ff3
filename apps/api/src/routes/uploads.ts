import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';
import { createUpload } from '../direct-uploads/create.ts';
import { showUpload } from '../direct-uploads/show.ts';
import { leaveBodiesUnread } from '../json-body.ts';
import type { Guards } from './jobs.ts';

/** Direct uploads: PUT URLs for files that go straight to S3 (`POST /v1/batches {"upload_id"}` makes them a batch). */
export function uploadRoutes(app: FastifyInstance, deps: AppDeps, { canRead, canWrite }: Guards): void {
  // The list of files is read as it streams in, not parsed whole by fastify.
  void app.register(async (scope) => {
    leaveBodiesUnread(scope, ['application/json']);
    scope.post('/v1/uploads', { onRequest: canWrite }, (request, reply) => createUpload(deps, request, reply));
  });
  app.get<{ Params: { id: string } }>('/v1/uploads/:id', { onRequest: canRead }, (request, reply) => showUpload(deps, request, reply));
}
