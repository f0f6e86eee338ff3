import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { routeOf } from '../contract/register.ts';
import { uploadOperations } from '../contract/uploads.ts';
import type { RouteOptions } from '../deps.ts';
import { createUpload } from '../direct-uploads/create.ts';
import { showUpload } from '../direct-uploads/show.ts';
import { leaveBodiesUnread } from '../intake/json-body.ts';

/** Direct uploads: PUT URLs for files that go straight to S3 (`POST /v1/batches {"upload_id"}` makes them a batch). */
export const uploadRoutes: FastifyPluginAsync<RouteOptions> = async (plugin, { deps, guards, contract }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  const ops = uploadOperations(contract);
  // The list of files is read as it streams in, not parsed whole by fastify.
  await plugin.register(async (scope) => {
    leaveBodiesUnread(scope, ['application/json']);
    scope.route({
      ...routeOf(ops.createUpload, guards),
      handler: (request, reply) => createUpload(deps, request, reply),
    });
  });
  app.route({ ...routeOf(ops.getUpload, guards), handler: (request, reply) => showUpload(deps, request, reply) });
};
