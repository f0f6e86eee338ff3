import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { createLogger, loadConfig, randomBase62 } from '@cutout/shared/infra';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from '@cutout/shared/embedded-s3';
import { startApi, type RunningApi } from '../../apps/api/src/server.ts';
import { deleteKeysWithPrefix, freePort, startRedisServer, stopAllProcesses } from '../helpers/processes.ts';
import { testRedis, uniquePrefix } from '../helpers/services.ts';
import { waitUntil } from './stack.ts';

/**
 * A load balancer takes an API process out of rotation while /readyz says 503 and back in
 * once it says 200: both must follow Redis and S3 going away and coming back, and the
 * check must answer (not hang) meanwhile.
 */

/** Far above the 2 s check timeout: an answer within it means /readyz did not hang. */
const ANSWER_WITHIN_MS = 10_000;

interface Readiness {
  status: number;
  body: { status: string; checks: Record<string, { ok: boolean; detail?: string }> };
}

async function readyz(apiUrl: string): Promise<Readiness> {
  const response = await request(`${apiUrl}/readyz`, {
    headersTimeout: ANSWER_WITHIN_MS,
    bodyTimeout: ANSWER_WITHIN_MS,
  });
  return { status: response.statusCode, body: (await response.body.json()) as Readiness['body'] };
}

/** Polls /readyz (every answer must come in time) until it answers `status`. */
async function readyzBecomes(apiUrl: string, status: number): Promise<Readiness> {
  let last: Readiness | undefined;
  return waitUntil(
    async () => {
      last = await readyz(apiUrl);
      return last.status === status ? last : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100, describe: () => `last answer: ${JSON.stringify(last)}` },
  );
}

async function startApiOn({
  redisUrl,
  s3Endpoint,
  bucket,
  prefix = uniquePrefix(),
}: {
  redisUrl: string;
  s3Endpoint: string;
  bucket: string;
  prefix?: string;
}): Promise<RunningApi> {
  const config = loadConfig({
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    S3_ENDPOINT: s3Endpoint,
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    PORT: '0',
    API_KEYS: `acme:ck_test_${randomBase62(32)}`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
  });
  return startApi(config, createLogger({ level: config.logLevel, name: 'test' }));
}

describe('/readyz', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    cleanups.length = 0;
    await stopAllProcesses();
  });

  function tempDirectory(): string {
    const directory = mkdtempSync(join(tmpdir(), 'cutout-readyz-s3-'));
    cleanups.push(async () => rmSync(directory, { recursive: true, force: true }));
    return directory;
  }

  it('turns 503 when S3 stops and 200 once it is back', async () => {
    const directory = tempDirectory();
    const bucket = `t${randomBase62(12).toLowerCase()}`;
    const port = await freePort();
    let s3: EmbeddedS3 = await startEmbeddedS3({ directory, bucket, port });
    cleanups.push(() => s3.close());
    const redis = await testRedis();
    cleanups.push(() => redis.close());
    const prefix = uniquePrefix();
    cleanups.push(() => deleteKeysWithPrefix(redis.url, prefix));
    const api = await startApiOn({ redisUrl: redis.url, s3Endpoint: s3.endpoint, bucket, prefix });
    cleanups.push(() => api.close());

    expect((await readyz(api.url)).body.status).toBe('ready');
    await s3.close();
    const down = await readyzBecomes(api.url, 503);
    expect(down.body).toMatchObject({ status: 'not_ready', checks: { s3: { ok: false }, redis: { ok: true } } });

    s3 = await startEmbeddedS3({ directory, bucket, port });
    const back = await readyzBecomes(api.url, 200);
    expect(back.body.checks.s3).toEqual({ ok: true });
  }, 90_000);

  it('turns 503 when Redis stops and 200 once it is back, answering all along', async () => {
    const redis = await startRedisServer([], 'redis-readyz');
    const s3 = await startEmbeddedS3({ directory: tempDirectory(), bucket: 'readyz' });
    cleanups.push(() => s3.close());
    const api = await startApiOn({ redisUrl: redis.url, s3Endpoint: s3.endpoint, bucket: 'readyz' });
    cleanups.push(() => api.close());

    expect((await readyz(api.url)).status).toBe(200);
    redis.process.killGroup('SIGKILL');
    await redis.process.exited;
    const down = await readyzBecomes(api.url, 503);
    expect(down.body).toMatchObject({ status: 'not_ready', checks: { redis: { ok: false }, s3: { ok: true } } });
    // Still answering (within the timeout) while Redis stays away.
    expect((await readyz(api.url)).status).toBe(503);

    await startRedisServer([], 'redis-readyz-again', redis.port);
    const back = await readyzBecomes(api.url, 200);
    expect(back.body.checks.redis).toEqual({ ok: true });
  }, 90_000);
});
