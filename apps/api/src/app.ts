import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { apiKeyRevocationChannel, createMetrics, makeApiKeyStore, makeReviewRevocations, randomBase62, reviewLinkSecret, type Config, type ImageFetcher, type Logger, type Metrics, type Services } from '@cutout/shared';
import { makeAuthenticate } from './auth.ts';
import { makeApiKeyCache } from './api-key-cache.ts';
import { registerErrorHandling, sendError, toApiError } from './errors.ts';
import { registerOpenApi } from './openapi/index.ts';
import { registerRateLimits } from './rate-limit.ts';
import { makeAuthFailures } from './auth-failures.ts';
import { registerHttpMetrics } from './http-metrics.ts';
import { adminQueueRoutes } from './routes/admin-queues.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { accountRoutes } from './routes/account.ts';
import { healthRoutes } from './routes/health.ts';
import { jobRoutes } from './routes/jobs.ts';
import { jobQueryRoutes } from './routes/job-queries.ts';
import { renditionRoutes } from './routes/renditions.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { webhookDeliveryRoutes } from './routes/webhook-deliveries.ts';
import { webhookEndpointRoutes } from './routes/webhook-endpoints.ts';
import { batchRoutes } from './routes/batches.ts';
import { uploadRoutes } from './routes/uploads.ts';
import { reviewRoutes } from './routes/reviews.ts';
import { reviewPageRoutes } from './review/page-routes.ts';
import type { Idempotency } from './idempotency.ts';
import type { JobWaiter } from './job-waiter.ts';

/** The backing services (all but the raw S3 client) plus what only the API needs. */
export interface AppDeps extends Omit<Services, 's3' | 'close'> {
  config: Config;
  idempotency: Idempotency;
  jobWaiter: JobWaiter;
  images: ImageFetcher;
  log: Logger;
  /** The process's registry; one of its own when absent (tests build several apps per process). */
  metrics?: Metrics;
}

/** TRUST_PROXY as fastify takes it: a hop count becomes "trust the first n hops". */
const trustProxyOption = (setting: Config['api']['trustProxy']) =>
  typeof setting === 'number' ? (_address: string, hop: number) => hop < setting : setting;

/** Builds the API without listening; `server.ts` listens, tests use `app.inject()`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Who may name the client in X-Forwarded-For (TRUST_PROXY); by default nobody.
    trustProxy: trustProxyOption(deps.config.api.trustProxy),
    genReqId: () => `req_${randomBase62(20)}`,
    // One line per request (onResponse below) instead of fastify's two.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    // Errors raised before routing (an over-long path id, a malformed URL) get the envelope too.
    frameworkErrors: (error, request, reply) => sendError(request, reply, toApiError(error as FastifyError)),
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });
  registerErrorHandling(app);
  await registerOpenApi(app, { publicBaseUrl: deps.config.api.publicBaseUrl });
  const limits = await registerRateLimits(app, {
    redis: deps.redis, prefix: deps.config.redis.prefix, perMinute: deps.config.api.rateLimitPerMinute,
    perLinkPerMinute: deps.config.api.reviewRateLimitPerMinute, failuresPerMinute: deps.config.api.authFailureLimitPerMinute,
  });
  const failures = makeAuthFailures(limits);
  const metrics = deps.metrics ?? createMetrics();
  registerHttpMetrics(app, metrics);
  await app.register(multipart, {
    limits: { fileSize: deps.config.api.maxUploadBytes, files: 1, fields: 10, parts: 12, fieldSize: 64 * 1024, fieldNameSize: 100 },
  });

  const apiKeys = makeApiKeyStore({ redis: deps.redis, prefix: deps.config.redis.prefix });
  const keyCache = makeApiKeyCache({
    apiKeys, subscriber: deps.redis.duplicate(), channel: apiKeyRevocationChannel(deps.config.redis.prefix), ttlMs: deps.config.api.apiKeyCacheTtlMs,
  });
  app.addHook('onClose', () => keyCache.close());
  const requireScope = makeAuthenticate({ apiKeys: keyCache, failures, perKey: limits.perKey });
  const reviewSecret = await reviewLinkSecret({ redis: deps.redis, prefix: deps.config.redis.prefix, configured: deps.config.api.reviewLinkSecret });
  const canRead = requireScope('jobs:read');
  const canWrite = requireScope('jobs:write');

  healthRoutes(app, deps);
  metricsRoutes(app, { metrics, queues: deps.queues, log: deps.log });
  await adminQueueRoutes(app, { adminApiKey: deps.config.adminApiKey, queues: deps.queues, failures });
  accountRoutes(app, deps, { canRead, canWrite });
  jobRoutes(app, deps, { canRead, canWrite });
  jobQueryRoutes(app, deps, { canRead, canWrite });
  renditionRoutes(app, deps, { canRead });
  webhookRoutes(app, deps, { canRead, canWrite });
  webhookDeliveryRoutes(app, deps, { canRead, canWrite });
  webhookEndpointRoutes(app, deps, { canRead, canWrite });
  batchRoutes(app, deps, { canRead, canWrite });
  uploadRoutes(app, deps, { canRead, canWrite });
  const revocations = makeReviewRevocations({ redis: deps.redis, prefix: deps.config.redis.prefix });
  reviewRoutes(app, { ...deps, revocations }, { canRead, canWrite }, reviewSecret);
  await reviewPageRoutes(app, { ...deps, apiKeys, revocations, failures, perLink: limits.perLink }, reviewSecret);
  return app;
}
