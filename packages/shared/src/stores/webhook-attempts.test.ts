import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newJobId } from '../infra/ids.ts';
import { createRedis, type Redis } from '../infra/redis.ts';
import {
  makeWebhookAttemptLog,
  MAX_WEBHOOK_ATTEMPTS_KEPT,
  type WebhookAttempt,
  type WebhookAttemptLog,
} from './webhook-attempts.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
const RETENTION_MS = 60_000;

let redis: Redis;
let attempts: WebhookAttemptLog;

beforeAll(async () => {
  redis = createRedis(REDIS_URL);
  await redis.connect();
  attempts = makeWebhookAttemptLog({ redis, prefix, retentionMs: RETENTION_MS });
});

afterAll(async () => {
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

const attempt = (n: number): WebhookAttempt => ({
  attemptedAt: new Date(Date.UTC(2030, 0, 1, 0, 0, n)).toISOString(),
  eventType: 'job.succeeded',
  webhookId: 'msg_abc',
  statusCode: n % 2 === 0 ? 500 : null,
  durationMs: n,
  error: `attempt ${n} failed`,
});

describe('webhook attempt log', () => {
  it('lists a job’s attempts newest first', async () => {
    const jobId = newJobId();
    for (const n of [1, 2, 3]) await attempts.record(jobId, attempt(n));

    expect(await attempts.list(jobId)).toEqual([attempt(3), attempt(2), attempt(1)]);
  });

  it('is empty for a job without attempts', async () => {
    expect(await attempts.list(newJobId())).toEqual([]);
  });

  it(`keeps only the last ${MAX_WEBHOOK_ATTEMPTS_KEPT} attempts`, async () => {
    const jobId = newJobId();
    for (let n = 1; n <= MAX_WEBHOOK_ATTEMPTS_KEPT + 5; n++) await attempts.record(jobId, attempt(n));

    const listed = await attempts.list(jobId);

    expect(listed).toHaveLength(MAX_WEBHOOK_ATTEMPTS_KEPT);
    expect(listed[0]).toEqual(attempt(MAX_WEBHOOK_ATTEMPTS_KEPT + 5));
    expect(listed.at(-1)).toEqual(attempt(6));
  });

  it('expires with the job retention, renewed on every attempt', async () => {
    const jobId = newJobId();
    await attempts.record(jobId, attempt(1));
    const key = `${prefix}:job:${jobId}:webhook-attempts`;
    await redis.pexpire(key, 1_000);

    await attempts.record(jobId, attempt(2));

    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(1_000);
    expect(ttl).toBeLessThanOrEqual(RETENTION_MS);
  });
});
