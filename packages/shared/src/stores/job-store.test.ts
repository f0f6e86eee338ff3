import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newJobId } from '../infra/ids.ts';
import { makeJobStore, type JobRecord, type JobStore } from './job-store.ts';
import { createRedis, type Redis } from '../infra/redis.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
const RETENTION_MS = 60_000;

let redis: Redis;
let jobs: JobStore;

beforeAll(async () => {
  redis = createRedis(REDIS_URL);
  await redis.connect();
  jobs = makeJobStore({ redis, prefix, retentionMs: RETENTION_MS });
});

afterAll(async () => {
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

const jobKey = (id: string) => `${prefix}:job:${id}`;
const tenantIndex = (tenantId: string) => `${prefix}:tenant:${tenantId}:jobs`;

function queuedJob(overrides: Partial<JobRecord> = {}): JobRecord {
  const id = newJobId();
  return {
    id,
    tenantId: 'acme',
    status: 'queued',
    createdAt: '2030-01-02T03:04:05.000Z',
    attempts: 0,
    upstreamCalls: 0,
    originalKey: `originals/acme/${id}`,
    originalBytes: 123_456,
    originalContentType: 'image/jpeg',
    ...overrides,
  };
}

async function created(overrides: Partial<JobRecord> = {}): Promise<JobRecord> {
  const record = queuedJob(overrides);
  await jobs.create(record);
  return record;
}

describe('create and get', () => {
  it('reads back exactly what was created, JSON fields included', async () => {
    const record = await created({
      metadata: { sku: 'A-100', tags: ['shoe', 'red'], nested: { count: 3, ok: true } },
      options: { format: 'png', size: 'full' },
      webhookUrl: 'https://hooks.example.com/cutout',
      webhook: { state: 'pending', attempts: 0 },
      error: { code: 'upstream_unavailable', message: 'ByByBG did not answer', retryable: true },
      resultKey: 'results/acme/x.png',
      resultBytes: 9_876,
      resultContentType: 'image/png',
      startedAt: '2030-01-02T03:04:06.000Z',
    });

    expect(await jobs.get(record.id)).toEqual(record);
  });

  it('keeps numbers as numbers', async () => {
    const record = await created({ attempts: 2, upstreamCalls: 3, originalBytes: 0 });

    const stored = await jobs.get(record.id);
    expect(stored).toMatchObject({ attempts: 2, upstreamCalls: 3, originalBytes: 0 });
    expect(typeof stored!.originalBytes).toBe('number');
  });

  it('returns null for an unknown job', async () => {
    expect(await jobs.get(newJobId())).toBeNull();
  });

  it('indexes the job under its tenant by creation time', async () => {
    const record = await created({ tenantId: 'indexed-tenant' });

    expect(await redis.zscore(tenantIndex('indexed-tenant'), record.id)).toBe(String(Date.parse(record.createdAt)));
  });

  it('reads a waiting reason it does not know (an older version wrote it) back as absent', async () => {
    const record = await created();
    await redis.hset(jobKey(record.id), 'waitingReason', 'paused_by_operator');

    const stored = await jobs.get(record.id);
    expect(stored).not.toHaveProperty('waitingReason');
  });

  it('keeps no TTL on a job that has not finished', async () => {
    const record = await created();

    expect(await redis.pttl(jobKey(record.id))).toBe(-1);
  });
});

describe('transition', () => {
  it('applies fields when the job is in an allowed status and returns the updated record', async () => {
    const record = await created();
    const startedAt = new Date().toISOString();

    const updated = await jobs.transition(record.id, ['queued'], { status: 'processing', startedAt });

    expect(updated).toEqual({ ...record, status: 'processing', startedAt });
    expect(await jobs.get(record.id)).toEqual(updated);
  });

  it('returns null and changes nothing when the job is in another status', async () => {
    const record = await created({ status: 'succeeded' });

    expect(await jobs.transition(record.id, ['queued', 'processing'], { status: 'failed' }, ['attempts'])).toBeNull();
    expect(await jobs.get(record.id)).toEqual(record);
  });

  it('returns null for an unknown job and does not create it', async () => {
    const id = newJobId();

    expect(await jobs.transition(id, ['queued'], { status: 'processing' })).toBeNull();
    expect(await redis.exists(jobKey(id))).toBe(0);
  });

  it('increments the named counters by one each time', async () => {
    const record = await created();

    await jobs.transition(record.id, ['queued'], { status: 'processing' }, ['attempts']);
    await jobs.transition(record.id, ['processing'], {}, ['upstreamCalls']);
    const updated = await jobs.transition(record.id, ['processing'], {}, ['attempts', 'upstreamCalls']);

    expect(updated).toMatchObject({ attempts: 2, upstreamCalls: 2 });
    expect(await jobs.get(record.id)).toMatchObject({ attempts: 2, upstreamCalls: 2 });
  });

  it('counts every one of many concurrent increments', async () => {
    const record = await created({ status: 'processing' });

    await Promise.all(
      Array.from({ length: 25 }, () => jobs.transition(record.id, ['processing'], {}, ['upstreamCalls'])),
    );

    expect(await jobs.get(record.id)).toMatchObject({ upstreamCalls: 25 });
  });

  it('lets only one of two racing transitions from the same status win', async () => {
    const record = await created({ status: 'processing' });

    const [succeeded, failed] = await Promise.all([
      jobs.transition(record.id, ['processing'], { status: 'succeeded' }),
      jobs.transition(record.id, ['processing'], { status: 'failed' }),
    ]);

    expect([succeeded, failed].filter(Boolean)).toHaveLength(1);
    expect((await jobs.get(record.id))!.status).toBe((succeeded ?? failed)!.status);
  });

  it('clears waitingReason when set to null', async () => {
    const record = await created();
    await jobs.transition(record.id, ['queued'], { waitingReason: 'upstream_rate_limited' });
    expect(await jobs.get(record.id)).toMatchObject({ waitingReason: 'upstream_rate_limited' });

    const updated = await jobs.transition(record.id, ['queued'], { status: 'processing', waitingReason: null });

    expect(updated).not.toHaveProperty('waitingReason');
    expect(await jobs.get(record.id)).not.toHaveProperty('waitingReason');
  });

  it.each(['succeeded', 'failed', 'canceled'] as const)(
    'sets the retention TTL when a job becomes %s',
    async (status) => {
      const record = await created({ status: 'processing' });

      await jobs.transition(record.id, ['processing'], { status, finishedAt: new Date().toISOString() });

      const ttl = await redis.pttl(jobKey(record.id));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(RETENTION_MS);
    },
  );

  it('sets no TTL on a move between non-terminal statuses', async () => {
    const record = await created();

    await jobs.transition(record.id, ['queued'], { status: 'processing' }, ['attempts']);
    await jobs.transition(record.id, ['processing'], { status: 'queued', waitingReason: 'upstream_rate_limited' });

    expect(await redis.pttl(jobKey(record.id))).toBe(-1);
  });

  it('stores a failure’s error as structured data', async () => {
    const record = await created({ status: 'processing' });
    const error = { code: 'unsupported_media_type' as const, message: 'not an image', retryable: false };

    const failed = await jobs.transition(record.id, ['processing'], { status: 'failed', error });

    expect(failed!.error).toEqual(error);
    expect((await jobs.get(record.id))!.error).toEqual(error);
  });
});

describe('setWebhook', () => {
  it('records the delivery state on an existing job', async () => {
    const record = await created({
      webhookUrl: 'https://hooks.example.com/x',
      webhook: { state: 'pending', attempts: 0 },
    });
    const delivery = {
      state: 'delivered' as const,
      attempts: 2,
      lastStatusCode: 200,
      deliveredAt: new Date().toISOString(),
    };

    await jobs.setWebhook(record.id, delivery);

    expect((await jobs.get(record.id))!.webhook).toEqual(delivery);
  });

  it('does not recreate a job that expired or never existed', async () => {
    const id = newJobId();

    await jobs.setWebhook(id, { state: 'failed', attempts: 8, lastError: 'timeout' });

    expect(await redis.exists(jobKey(id))).toBe(0);
    expect(await jobs.get(id)).toBeNull();
  });

  it('does not recreate a job after its record expired', async () => {
    const record = await created({ status: 'succeeded' });
    await redis.pexpire(jobKey(record.id), 1);
    await expect.poll(() => redis.exists(jobKey(record.id))).toBe(0);

    await jobs.setWebhook(record.id, { state: 'delivered', attempts: 1 });

    expect(await jobs.get(record.id)).toBeNull();
  });

  it('keeps the TTL of a finished job', async () => {
    const record = await created({ status: 'processing' });
    await jobs.transition(record.id, ['processing'], { status: 'succeeded' });

    await jobs.setWebhook(record.id, { state: 'delivered', attempts: 1 });

    expect(await redis.pttl(jobKey(record.id))).toBeGreaterThan(0);
  });
});

describe('remove', () => {
  it('deletes the record and its tenant index entry', async () => {
    const record = await created({ tenantId: 'removal-tenant' });
    const sibling = await created({ tenantId: 'removal-tenant' });

    await jobs.remove(record);

    expect(await jobs.get(record.id)).toBeNull();
    expect(await redis.exists(jobKey(record.id))).toBe(0);
    expect(await redis.zscore(tenantIndex('removal-tenant'), record.id)).toBeNull();
    expect(await redis.zscore(tenantIndex('removal-tenant'), sibling.id)).not.toBeNull();
    expect(await jobs.get(sibling.id)).toEqual(sibling);
  });
});
