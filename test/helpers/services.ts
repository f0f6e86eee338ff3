import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { randomBase62 } from '@cutout/shared';
import { startEmbeddedS3, EMBEDDED_S3_CREDENTIALS } from '@cutout/shared/embedded-s3';

/** A key prefix of its own for each test run, so runs share one Redis safely. */
export const uniquePrefix = (): string => `cutout-test-${randomBase62(10)}`;

async function answers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export interface TestRedis { url: string; close(): Promise<void> }

/** REDIS_URL when set, else the local Redis on 6379, else a container when a Docker engine runs. */
export async function testRedis(): Promise<TestRedis> {
  const configured = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (await answers(configured)) return { url: configured, close: async () => undefined };
  const { getContainerRuntimeClient } = await import('testcontainers');
  const haveDocker = await getContainerRuntimeClient().then(() => true, () => false);
  if (!haveDocker) throw new Error(`No Redis at ${configured} and no Docker engine; start redis-server or set REDIS_URL`);
  const { RedisContainer } = await import('@testcontainers/redis');
  const container = await new RedisContainer('redis:7-alpine').withCommand(['redis-server', '--maxmemory-policy', 'noeviction']).start();
  return { url: container.getConnectionUrl(), close: async () => void (await container.stop()) };
}

export interface TestS3 { endpoint: string; accessKeyId: string; secretAccessKey: string; bucket: string; close(): Promise<void> }

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
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
