import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBatchStore, newBatchId, type BatchRecord, type BatchStore } from './batch-store.ts';
import { newJobId } from './ids.ts';
import { makeJobStore, type JobRecord, type JobStore } from './job-store.ts';
import { createRedis, type Redis } from './redis.ts';
import { unlinkPrefix } from '../../../test/helpers/redis-keys.ts';

const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
let redis: Redis;
let jobs: JobStore;
let batches: BatchStore;

beforeAll(async () => {
  redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await redis.connect();
  jobs = makeJobStore({ redis, prefix, retentionMs: 60_000 });
  batches = makeBatchStore({ redis, prefix });
});
afterAll(async () => {
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

async function batchOf(size: number): Promise<{ batch: BatchRecord; items: JobRecord[] }> {
  const batch: BatchRecord = {
    id: newBatchId(), tenantId: 'acme', status: 'processing', createdAt: new Date().toISOString(),
    total: size, queued: 0, processing: 0, succeeded: 0, failed: 0, canceled: 0, rejected: 1, ended: 0, upstreamCalls: 0, creditsSaved: 0, itemEvents: false, reviewRejected: 0, qualityFlagged: 0,
  };
  await batches.create(batch);
  const items = Array.from({ length: size }, (): JobRecord => {
    const id = newJobId();
    return { id, tenantId: 'acme', status: 'queued', createdAt: batch.createdAt, attempts: 0, upstreamCalls: 0, originalKey: `originals/acme/${id}`, originalBytes: 0, originalContentType: '', batchId: batch.id, sourceUrl: 'https://example.com/a.png' };
  });
  await batches.addItems(batch.id, items);
  return { batch, items };
}

describe('batch counters', () => {
  it('moves counters with each item transition and completes on the last one, once', async () => {
    const { batch, items } = await batchOf(3);
    expect((await batches.get(batch.id))!.queued).toBe(3);
    expect(await batches.itemIds(batch.id, 0, 10)).toEqual(items.map((item) => item.id));

    await jobs.transition(items[0]!.id, ['queued'], { status: 'processing' });
    await jobs.transition(items[0]!.id, ['processing'], {}, ['upstreamCalls']);
    expect(await jobs.transition(items[0]!.id, ['processing'], { status: 'succeeded' })).not.toHaveProperty('batchCompleted');
    await jobs.transition(items[1]!.id, ['queued'], { status: 'processing' });
    await jobs.transition(items[1]!.id, ['processing'], { status: 'failed' });
    // A transition refused by its guard changes nothing.
    expect(await jobs.transition(items[1]!.id, ['queued'], { status: 'canceled' })).toBeNull();

    const midway = (await batches.get(batch.id))!;
    expect(midway).toMatchObject({ status: 'processing', queued: 1, processing: 0, succeeded: 1, failed: 1, canceled: 0, rejected: 1, ended: 2, upstreamCalls: 1 });

    const last = await jobs.transition(items[2]!.id, ['queued'], { status: 'canceled' });
    expect(last?.batchCompleted).toBe(true);
    const done = (await batches.get(batch.id))!;
    expect(done).toMatchObject({ status: 'completed', queued: 0, canceled: 1, ended: 3 });
    expect(done.completedAt).toBeDefined();
    expect(await redis.pttl(`${prefix}:batch:${batch.id}`)).toBeGreaterThan(0);
    expect(await batches.recentEnds(batch.id)).toHaveLength(3);
  });

  it('keeps a canceled batch canceled when its last item ends', async () => {
    const { batch, items } = await batchOf(1);
    await jobs.transition(items[0]!.id, ['queued'], { status: 'processing' });
    expect(await batches.markCanceled(batch.id)).toBe(true);
    expect(await batches.markCanceled(batch.id)).toBe(false);
    await jobs.transition(items[0]!.id, ['processing'], { status: 'succeeded' });
    expect(await batches.get(batch.id)).toMatchObject({ status: 'canceled', succeeded: 1, ended: 1 });
  });
});
