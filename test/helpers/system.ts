import { loadConfig, createLogger, randomBase62, type Config, type Services } from '@cutout/shared/infra';
import { startApi } from '../../apps/api/src/server.ts';
import type { ContractViolation } from '../../apps/api/src/contract/register.ts';
import { startWorker } from '../../apps/worker/src/server.ts';
import { startEmulator, type RunningEmulator } from '../../apps/emulator/src/server.ts';
import type { FaultPatch } from '../../apps/emulator/src/faults.ts';
import { testRedis, testS3, uniquePrefix } from './services.ts';
import { Redis } from 'ioredis';
import { unlinkPrefix } from './redis-keys.ts';

export interface SystemOptions {
  env?: Record<string, string>;
  faults?: FaultPatch;
  /** Worker instances, each with its own connections and rate governor, like separate processes. Default 1. */
  workers?: number;
}

export interface TestSystem {
  apiUrl: string;
  apiKey: string;
  tenantId: string;
  /** A second tenant, for isolation tests. */
  otherApiKey: string;
  config: Config;
  services: Services;
  emulator: RunningEmulator;
  /** Each worker's own /metrics server (the API's is `${apiUrl}/metrics`). */
  workerMetricsUrls: string[];
  /** Answers that did not match the OpenAPI document; close() fails when there are any. */
  contractViolations: ContractViolation[];
  close(): Promise<void>;
}

/**
 * The real pieces in this process: Redis (own prefix), an S3 server (own bucket), the
 * emulator, the API on a free port, and `workers` workers.
 */
export async function startSystem({ env = {}, faults, workers = 1 }: SystemOptions = {}): Promise<TestSystem> {
  const redis = await testRedis();
  const s3 = await testS3();
  const emulatorKey = `emu-${randomBase62(16)}`;
  const emulator = await startEmulator({ keys: [emulatorKey], faults: { rateLimit: null, ...faults }, logger: false });
  const apiKey = `ck_test_${randomBase62(32)}`;
  const otherApiKey = `ck_test_${randomBase62(32)}`;
  const config = loadConfig(
    {
      REDIS_URL: redis.url,
      REDIS_PREFIX: uniquePrefix(),
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      BYBYBG_API_URL: emulator.url,
      BYBYBG_API_KEY: emulatorKey,
      PORT: '0',
      // Tests submit thousands of jobs with one key; the limit itself has its own test.
      API_RATE_LIMIT_PER_MINUTE: '1000000',
      // Many tests send bad keys on purpose from one address; the limit has its own tests.
      AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000',
      API_KEYS: `acme:${apiKey},globex:${otherApiKey}`,
      WEBHOOK_RETRY_SCHEDULE: '0,50ms,100ms',
      // Test receivers listen on loopback, which the SSRF guard refuses unless allowed.
      WEBHOOK_ALLOW_PRIVATE: '127.0.0.0/8',
      WORKER_LOCK_DURATION: '5s',
      WORKER_STALLED_INTERVAL: '2s',
      WORKER_SHUTDOWN_TIMEOUT: '5s',
      // Several workers in one process: each serves its /metrics on a port of its own.
      WORKER_METRICS_PORT: '0',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      ...env,
    },
    { bybybgKey: true },
  );
  const log = createLogger({ level: config.logLevel, name: 'test' });
  // Every answer of every test is checked against the OpenAPI document as it is sent.
  const violations: ContractViolation[] = [];
  const api = await startApi(config, log, { onContractViolation: (violation) => violations.push(violation) });
  const running = await Promise.all(Array.from({ length: workers }, () => startWorker(config, log)));
  return {
    apiUrl: api.url,
    apiKey,
    tenantId: 'acme',
    otherApiKey,
    config,
    services: api.services,
    emulator,
    workerMetricsUrls: running.flatMap((worker) => (worker.metricsUrl ? [worker.metricsUrl] : [])),
    contractViolations: violations,
    async close() {
      await Promise.all(running.map((worker) => worker.close()));
      // The API goes first: nothing it still serves (a review stream) sees its keys vanish.
      // A test may have killed its Redis: then there is nothing to clean, and no reconnecting.
      const cleaner = new Redis(config.redis.url, {
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      await api.close();
      await unlinkPrefix(cleaner, config.redis.prefix)
        .catch(() => undefined)
        .finally(() => cleaner.disconnect());
      await emulator.close();
      await s3.close();
      await redis.close();
      if (violations.length > 0)
        throw new Error(
          `answers that do not match the OpenAPI document:\n${violations.map((v) => `${v.operationId} ${v.status}: ${v.problem}`).join('\n')}`,
        );
    },
  };
}

/** Deletes every key of this run's prefix (never FLUSHALL: the Redis is shared). */
