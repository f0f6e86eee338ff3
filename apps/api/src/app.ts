import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { randomBase62, type Config, type JobStore, type Logger, type Queues, type Redis, type Storage, type TenantStore, type UpstreamState } from '@cutout/shared';
import { makeAuthenticate } from './auth.ts';
import { registerErrorHandling } from './errors.ts';
import { accountRoutes } from './routes/account.ts';
import { healthRoutes } from './routes/health.ts';
import { jobRoutes } from './routes/jobs.ts';

export interface AppDeps {
  config: Config;
  redis: Redis;
  storage: Storage;
  jobs: JobStore;
  tenants: TenantStore;
  queues: Queues;
  upstream: UpstreamState;
  log: Logger;
}

/** Builds the API without listening; `server.ts` listens, tests use `app.inject()`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    genReqId: () => `req_${randomBase62(20)}`,
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    forceCloseConnections: 'idle',
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  registerErrorHandling(app);
  await app.register(multipart, {
    limits: { fileSize: deps.config.api.maxUploadBytes, files: 1, fields: 10, parts: 12, fieldSize: 64 * 1024, fieldNameSize: 100 },
  });

  const requireScope = makeAuthenticate(deps.tenants);
  const canRead = requireScope('jobs:read');
  const canWrite = requireScope('jobs:write');

  healthRoutes(app, deps);
  accountRoutes(app, deps, canRead);
  jobRoutes(app, deps, { canRead, canWrite });
  return app;
}
