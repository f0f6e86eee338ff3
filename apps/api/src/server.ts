import type { FastifyInstance } from 'fastify';
import { makeImageFetcher } from '@cutout/shared/images';
import { openServices, type Config, type Logger, type Metrics, type Services } from '@cutout/shared/infra';
import { createGuardedAgent } from '@cutout/shared/security';
import { makeApiKeyStore } from './auth/api-keys.ts';
import { buildApp, type BuildOptions } from './app.ts';
import { withUploadSlots } from './intake/upload-slots.ts';
import { closeWithGrace } from './http/drain.ts';
import { makeIdempotency } from './http/idempotency.ts';
import { makeJobWaiter } from './jobs/waiter.ts';

const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;

export interface RunningApi {
  app: FastifyInstance;
  url: string;
  services: Services;
  close(): Promise<void>;
}

/**
 * Connects, registers bootstrap keys, listens. Closing stops accepting, drains (within
 * SHUTDOWN_GRACE), disconnects. `metrics`: a registry shared with a worker in the same
 * process (`npm start`), so /metrics shows both.
 */
export async function startApi(
  config: Config,
  log: Logger,
  { metrics, onContractViolation }: { metrics?: Metrics } & BuildOptions = {},
): Promise<RunningApi> {
  const services = await openServices(config, { name: 'cutout-api', log });
  await makeApiKeyStore({ redis: services.redis, prefix: config.redis.prefix }).bootstrap(config.api.bootstrapKeys);
  await services.storage
    .ensureBucket()
    .catch((error: unknown) => log.warn({ err: error, bucket: config.s3.bucket }, 'S3 bucket not reachable yet'));
  const jobWaiter = makeJobWaiter({ subscriber: services.redis.duplicate(), channel: services.jobs.endedChannel });
  const idempotency = makeIdempotency({
    redis: services.redis,
    prefix: config.redis.prefix,
    ttlMs: IDEMPOTENCY_TTL_MS,
  });
  const policy = { allowPrivate: config.webhooks.allowPrivate };
  const imageAgent = createGuardedAgent({ policy, log: log.child({ component: 'url-guard' }) });
  const images = makeImageFetcher({
    dispatcher: imageAgent,
    policy,
    timeoutMs: config.api.imageUrlTimeoutMs,
    maxBytes: config.api.maxUploadBytes,
  });
  const storage = withUploadSlots(services.storage, config.api.uploadConcurrency);
  const app = await buildApp(
    { config, log, ...services, storage, idempotency, jobWaiter, images, metrics },
    { onContractViolation },
  );
  const address = await app.listen({ port: config.api.port, host: config.api.host });
  return {
    app,
    url: address,
    services,
    async close() {
      await closeWithGrace(app, config.api.shutdownGraceMs, log);
      await jobWaiter.close();
      await imageAgent.close();
      await services.close();
    },
  };
}
