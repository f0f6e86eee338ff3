import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createS3Client, randomBase62 } from '@cutout/shared/infra';
import type { S3Client } from '@aws-sdk/client-s3';
import { startEmbeddedS3, EMBEDDED_S3_CREDENTIALS } from '@cutout/shared/embedded-s3';

/** A key prefix of its own for each test run, so runs share one Redis safely. */
export const uniquePrefix = (): string => `cutout-test-${randomBase62(10)}`;

async function answers(url: string): Promise<boolean> {
  const probe = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export interface TestRedis {
  url: string;
  close(): Promise<void>;
}

/** REDIS_URL when set, else the local Redis on 6379, else a container when a Docker engine runs. */
export async function testRedis(): Promise<TestRedis> {
  const configured = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (await answers(configured)) return { url: configured, close: async () => undefined };
  const { getContainerRuntimeClient } = await import('testcontainers');
  const haveDocker = await getContainerRuntimeClient().then(
    () => true,
    () => false,
  );
  if (!haveDocker)
    throw new Error(`No Redis at ${configured} and no Docker engine; start redis-server or set REDIS_URL`);
  const { RedisContainer } = await import('@testcontainers/redis');
  const container = await new RedisContainer('redis:7-alpine')
    .withCommand(['redis-server', '--maxmemory-policy', 'noeviction'])
    .start();
  return { url: container.getConnectionUrl(), close: async () => void (await container.stop()) };
}

export interface TestS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** The in-process server's requests (method, path); absent with S3_ENDPOINT. */
  observe?: (listener: (method: string, path: string) => void) => () => void;
  close(): Promise<void>;
}

/** S3_ENDPOINT (with its credentials) when set, else an in-process s3rver on a temp directory. */
export async function testS3(bucket = `t${randomBase62(12).toLowerCase()}`): Promise<TestS3> {
  if (process.env.S3_ENDPOINT) {
    return {
      endpoint: process.env.S3_ENDPOINT,
      accessKeyId: process.env.S3_ACCESS_KEY_ID ?? '',
      secretAccessKey: process.env.S3_SECRET_ACCESS_KEY ?? '',
      bucket: process.env.S3_BUCKET ?? bucket,
      close: async () => undefined,
    };
  }
  const directory = mkdtempSync(join(tmpdir(), 'cutout-s3-'));
  const server = await startEmbeddedS3({ directory, bucket });
  return {
    endpoint: server.endpoint,
    ...EMBEDDED_S3_CREDENTIALS,
    bucket,
    observe: (listener) => server.observe(listener),
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

type S3Access = Pick<TestS3, 'endpoint' | 'bucket' | 'accessKeyId' | 'secretAccessKey'>;

/** An S3 client for a test S3 server, with the same settings the apps use. */
export function s3ClientFor(s3: S3Access): S3Client {
  return createS3Client({
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    region: 'us-east-1',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
  });
}

export interface AppProcessServices {
  redisUrl: string;
  prefix: string;
  s3: S3Access;
  emulatorUrl: string;
  emulatorKey: string;
  apiKeys: string;
}

/**
 * The environment API and worker child processes need to run against these services:
 * JSON logs at info (the helpers wait for start-up lines), loopback webhooks allowed, no
 * intake rate limit (tests submit thousands of jobs with one key), and a free port for
 * each worker's /metrics.
 */
export function appProcessEnv({
  redisUrl,
  prefix,
  s3,
  emulatorUrl,
  emulatorKey,
  apiKeys,
}: AppProcessServices): Record<string, string> {
  return {
    LOG_LEVEL: 'info',
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    BYBYBG_API_URL: emulatorUrl,
    BYBYBG_API_KEY: emulatorKey,
    API_KEYS: apiKeys,
    API_RATE_LIMIT_PER_MINUTE: '1000000',
    // Hostile-input tests send thousands of bad keys from loopback; the limit has its own tests.
    AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000',
    WEBHOOK_ALLOW_PRIVATE: '127.0.0.0/8',
    WORKER_METRICS_PORT: '0',
  };
}
