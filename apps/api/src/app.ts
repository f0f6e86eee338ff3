import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { createMetrics, randomBase62, type Config } from '@cutout/shared/infra';
import { apiKeyRevocationChannel, makeApiKeyStore } from './auth/api-keys.ts';
import { makeReviewRevocations, reviewLinkSecret } from './review/tokens.ts';
import { makeAuthenticate } from './auth/authenticate.ts';
import { makeApiKeyCache } from './auth/key-cache.ts';
import { registerErrorHandling, sendError, toApiError } from './http/errors.ts';
import { registerContract, type ContractViolation } from './contract/register.ts';
import { fieldRulesOf } from './contract/fields.ts';
import type { ContractSettings } from './contract/jobs.ts';
import { registerRateLimits } from './http/rate-limit.ts';
import { makeAuthFailures } from './auth/failures.ts';
import { registerHttpMetrics } from './http/metrics.ts';
import { adminQueueRoutes } from './routes/admin-queues.ts';
import { accountRoutes } from './routes/account.ts';
import { healthRoutes } from './routes/health.ts';
import { jobRoutes } from './routes/jobs.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { batchRoutes } from './routes/batches.ts';
import { uploadRoutes } from './routes/uploads.ts';
import { reviewRoutes } from './routes/reviews.ts';
import { reviewPageRoutes } from './review/page-routes.ts';
import type { AppDeps, RouteOptions } from './deps.ts';

export type { AppDeps } from './deps.ts';

/** TRUST_PROXY as fastify takes it: a hop count becomes "trust the first n hops". */
const trustProxyOption = (setting: Config['api']['trustProxy']) =>
  typeof setting === 'number' ? (_address: string, hop: number) => hop < setting : setting;

export const contractSettingsOf = (config: Config): ContractSettings => ({
  rules: fieldRulesOf(config),
  maxUploadBytes: config.api.maxUploadBytes,
  maxImagePixels: config.api.maxImagePixels,
  maxBatchItems: config.api.maxBatchItems,
  maxManifestBytes: config.api.maxManifestBytes,
});

export interface BuildOptions {
  /** Told of every answer that does not match the document (tests fail on them); logged as a warning otherwise. */
  onContractViolation?: (violation: ContractViolation) => void;
}

/** Builds the API without listening; `server.ts` listens, tests use `app.inject()`. */
export async function buildApp(deps: AppDeps, { onContractViolation }: BuildOptions = {}): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Who may name the client in X-Forwarded-For (TRUST_PROXY); by default nobody.
    trustProxy: trustProxyOption(config.api.trustProxy),
    genReqId: () => `req_${randomBase62(20)}`,
    // One line per request (onResponse below) instead of fastify's two.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    // Errors raised before routing (an over-long path id, a malformed URL) get the envelope too.
    frameworkErrors: (error, request, reply) => sendError(request, reply, toApiError(error as FastifyError)),
  });
  // The hooks every request runs are callbacks, not async functions: no promise per request for each.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
    done();
  });
  const report = (violation: ContractViolation) => {
    deps.log.warn({ violation }, 'answer does not match the OpenAPI document');
    onContractViolation?.(violation);
  };
  registerErrorHandling(app, report);
  await registerContract(app, { publicBaseUrl: config.api.publicBaseUrl, version: '1.0.0', report });
  const limits = await registerRateLimits(app, {
    redis: deps.redis,
    prefix: config.redis.prefix,
    perMinute: config.api.rateLimitPerMinute,
    perLinkPerMinute: config.api.reviewRateLimitPerMinute,
    failuresPerMinute: config.api.authFailureLimitPerMinute,
  });
  const failures = makeAuthFailures(limits);
  const metrics = deps.metrics ?? createMetrics();
  registerHttpMetrics(app, metrics);
  await app.register(multipart, {
    limits: {
      fileSize: config.api.maxUploadBytes,
      files: 1,
      fields: 10,
      parts: 12,
      fieldSize: 64 * 1024,
      fieldNameSize: 100,
    },
  });

  const apiKeys = makeApiKeyStore({ redis: deps.redis, prefix: config.redis.prefix });
  const keyCache = makeApiKeyCache({
    apiKeys,
    subscriber: deps.redis.duplicate(),
    channel: apiKeyRevocationChannel(config.redis.prefix),
    ttlMs: config.api.apiKeyCacheTtlMs,
  });
  app.addHook('onClose', () => keyCache.close());
  const { requireScope, countDeferredAllowance } = makeAuthenticate({
    apiKeys: keyCache,
    failures,
    perKey: limits.perKey,
    perKeyTerms: limits.perKeyTerms,
  });
  app.addHook('onSend', countDeferredAllowance);
  const reviewSecret = await reviewLinkSecret({
    redis: deps.redis,
    prefix: config.redis.prefix,
    configured: config.api.reviewLinkSecret,
  });
  const revocations = makeReviewRevocations({ redis: deps.redis, prefix: config.redis.prefix });

  const routes: RouteOptions = {
    deps,
    guards: { 'jobs:read': requireScope('jobs:read'), 'jobs:write': requireScope('jobs:write') },
    contract: contractSettingsOf(config),
  };
  await app.register(healthRoutes, { ...routes, metrics });
  await adminQueueRoutes(app, { adminApiKey: config.adminApiKey, queues: deps.queues, failures });
  await app.register(accountRoutes, routes);
  await app.register(jobRoutes, routes);
  await app.register(batchRoutes, routes);
  await app.register(uploadRoutes, routes);
  await app.register(webhookRoutes, routes);
  await app.register(reviewRoutes, { ...routes, secret: reviewSecret, revocations });
  await reviewPageRoutes(app, { ...deps, apiKeys, revocations, failures, perLink: limits.perLink }, reviewSecret);
  return app;
}
