import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { createLogger, loadConfig, randomBase62 } from '@cutout/shared/infra';
import { startApi, type RunningApi } from '../../apps/api/src/server.ts';
import { deleteKeysWithPrefix } from '../helpers/processes.ts';
import { testRedis, testS3, uniquePrefix, type TestRedis, type TestS3 } from '../helpers/services.ts';

/**
 * The queue dashboard is for operators: it answers only to ADMIN_API_KEY (as X-API-KEY
 * or as a browser's basic-auth password), and does not exist when no key is configured.
 */

const ADMIN_KEY = `admin_${randomBase62(32)}`;
const TENANT_KEY = `ck_test_${randomBase62(32)}`;

interface Api {
  api: RunningApi;
  prefix: string;
}

async function startApiWith(redis: TestRedis, s3: TestS3, env: Record<string, string>): Promise<Api> {
  const prefix = uniquePrefix();
  const config = loadConfig({
    REDIS_URL: redis.url,
    REDIS_PREFIX: prefix,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    PORT: '0',
    API_KEYS: `acme:${TENANT_KEY}`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...env,
  });
  return { api: await startApi(config, createLogger({ level: config.logLevel, name: 'test' })), prefix };
}

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await request(url, { headers });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('queue dashboard', () => {
  let redis: TestRedis;
  let s3: TestS3;
  let withKey: Api;
  let withoutKey: Api;

  beforeAll(async () => {
    redis = await testRedis();
    s3 = await testS3();
    withKey = await startApiWith(redis, s3, { ADMIN_API_KEY: ADMIN_KEY });
    withoutKey = await startApiWith(redis, s3, {});
  });
  afterAll(async () => {
    for (const { api, prefix } of [withKey, withoutKey].filter(Boolean)) {
      await api.close();
      await deleteKeysWithPrefix(redis.url, prefix);
    }
    await s3?.close();
    await redis?.close();
  });

  it('opens with the admin key in X-API-KEY', async () => {
    const page = await get(`${withKey.api.url}/admin/queues`, { 'x-api-key': ADMIN_KEY });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);

    const queues = await get(`${withKey.api.url}/admin/queues/api/queues`, { 'x-api-key': ADMIN_KEY });
    expect(queues.status).toBe(200);
    const names = (JSON.parse(queues.text) as { queues: { name: string; readOnlyMode: boolean }[] }).queues.map(
      (queue) => [queue.name, queue.readOnlyMode],
    );
    expect(names.sort()).toEqual([
      ['remove-bg', true],
      ['webhooks', true],
    ]);
  });

  it('opens in a browser with the admin key as the basic-auth password', async () => {
    const page = await get(`${withKey.api.url}/admin/queues`, { authorization: basic('ops', ADMIN_KEY) });
    expect(page.status).toBe(200);
    const queues = await get(`${withKey.api.url}/admin/queues/api/queues`, { authorization: basic('', ADMIN_KEY) });
    expect(queues.status).toBe(200);
  });

  it('answers 401 with the error envelope and a basic-auth challenge without the key', async () => {
    for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
      const answer = await get(`${withKey.api.url}${path}`);
      expect(answer.status, path).toBe(401);
      expect(answer.headers['www-authenticate']).toMatch(/^Basic realm=/);
      expect(JSON.parse(answer.text)).toMatchObject({
        error: { code: 'missing_api_key', request_id: expect.stringMatching(/^req_/) },
      });
    }
  });

  it('answers 401 to a wrong key, a tenant key and a wrong basic-auth password', async () => {
    const attempts: Record<string, string>[] = [
      { 'x-api-key': `${ADMIN_KEY}x` },
      { 'x-api-key': TENANT_KEY },
      { authorization: basic('ops', 'not-the-admin-key') },
    ];
    for (const headers of attempts) {
      const answer = await get(`${withKey.api.url}/admin/queues/api/queues`, headers);
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.text).error.code).toBe('invalid_api_key');
    }
  });

  it('does not exist when ADMIN_API_KEY is not set', async () => {
    for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
      const answer = await get(`${withoutKey.api.url}${path}`, { 'x-api-key': ADMIN_KEY });
      expect(answer.status, path).toBe(404);
      expect(JSON.parse(answer.text).error.code).toBe('not_found');
    }
  });
});
