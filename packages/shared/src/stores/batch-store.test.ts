import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { makeBatchStore, type BatchStore } from './batch-store.ts';
import { newBatchId } from './batch-record.ts';
import type { BatchItemRecord } from './batch-creation.ts';
import { makeBatchFeeder } from './batch-feeder.ts';
import { cancelQueuedItems, failAbandonedCreations } from './batch-cancel.ts';
import { makeFairScheduler } from './fairness.ts';
import { newJobId } from '../infra/ids.ts';
import { makeJobStore, type JobStore } from './job-store.ts';
import { bullPrefix, QUEUE_NAMES, type RemoveBgPayload } from '../infra/queues.ts';
import { createRedis, type Redis } from '../infra/redis.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
const LEASE_MS = 60_000;
let redis: Redis;
let jobs: JobStore;
let batches: BatchStore;
let removeBg: Queue<RemoveBgPayload>;

beforeAll(async () => {
  redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await redis.connect();
  jobs = makeJobStore({ redis, prefix, retentionMs: 60_000 });
  batches = makeBatchStore({ redis, prefix, retentionMs: 60_000 });
  removeBg = new Queue<RemoveBgPayload>(QUEUE_NAMES.removeBg, { connection: redis, prefix: bullPrefix(prefix) });
});
afterAll(async () => {
  await removeBg.close();
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

const itemsFor = (batchId: string, size: number): BatchItemRecord[] =>
  Array.from({ length: size }, () => ({
    id: newJobId(),
    tenantId: 'acme',
    status: 'queued',
    createdAt: new Date().toISOString(),
    batchId,
    sourceUrl: 'https://example.com/a.png',
  }));

/** A batch opened, written in one chunk and committed with `fields`. */
async function batchOf(
  size: number,
  fields: Parameters<BatchStore['commit']>[1] = { rejected: 1 },
): Promise<{ batchId: string; items: BatchItemRecord[] }> {
  const batchId = newBatchId();
  await batches.open({ id: batchId, tenantId: 'acme', createdAt: new Date().toISOString() }, LEASE_MS);
  const items = itemsFor(batchId, size);
  await batches.addItems(batchId, items, LEASE_MS);
  expect(await batches.commit(batchId, fields)).toBe('committed');
  return { batchId, items };
}

describe('batch counters', () => {
  it('moves counters with each item transition and completes on the last one, once', async () => {
    const { batchId, items } = await batchOf(3);
    expect((await batches.get(batchId))!).toMatchObject({ status: 'processing', total: 3, queued: 3 });
    expect(await batches.itemIds(batchId, 0, 10)).toEqual(items.map((item) => item.id));

    await jobs.transition(items[0]!.id, ['queued'], { status: 'processing' });
    await jobs.transition(items[0]!.id, ['processing'], {}, ['upstreamCalls']);
    expect(await jobs.transition(items[0]!.id, ['processing'], { status: 'succeeded' })).not.toHaveProperty(
      'batchCompleted',
    );
    await jobs.transition(items[1]!.id, ['queued'], { status: 'processing' });
    await jobs.transition(items[1]!.id, ['processing'], { status: 'failed' });
    // A transition refused by its guard changes nothing.
    expect(await jobs.transition(items[1]!.id, ['queued'], { status: 'canceled' })).toBeNull();

    const midway = (await batches.get(batchId))!;
    expect(midway).toMatchObject({
      status: 'processing',
      queued: 1,
      processing: 0,
      succeeded: 1,
      failed: 1,
      canceled: 0,
      rejected: 1,
      ended: 2,
      upstreamCalls: 1,
    });

    const last = await jobs.transition(items[2]!.id, ['queued'], { status: 'canceled' });
    expect(last?.batchCompleted).toBe(true);
    const done = (await batches.get(batchId))!;
    expect(done).toMatchObject({ status: 'completed', queued: 0, canceled: 1, ended: 3 });
    expect(done.completedAt).toBeDefined();
    expect(await redis.pttl(`${prefix}:batch:${batchId}`)).toBeGreaterThan(0);
    expect(await batches.recentEnds(batchId)).toHaveLength(3);
  });

  it('keeps a canceled batch canceled when its last item ends', async () => {
    const { batchId, items } = await batchOf(1);
    await jobs.transition(items[0]!.id, ['queued'], { status: 'processing' });
    expect(await batches.markCanceled(batchId)).toBe(true);
    expect(await batches.markCanceled(batchId)).toBe(false);
    await jobs.transition(items[0]!.id, ['processing'], { status: 'succeeded' });
    expect(await batches.get(batchId)).toMatchObject({ status: 'canceled', succeeded: 1, ended: 1 });
  });
});

describe('batch items', () => {
  it('are written without defaults or settings, and read with both', async () => {
    const plans = [
      {
        name: 'web',
        format: 'webp' as const,
        background: null,
        maxWidth: 1600,
        maxHeight: 1600,
        canvas: 'original' as const,
        fit: 'contain' as const,
        padding: 0,
        minSize: 0,
        quality: 82,
      },
    ];
    const { items } = await batchOf(1, {
      options: { size: 'hd' },
      renditionPlans: plans as never,
      webhookUrl: 'https://hooks.example/b',
      itemEvents: true,
    });
    const stored = await redis.hgetall(`${prefix}:job:${items[0]!.id}`);
    expect(Object.keys(stored).sort()).toEqual(['batchId', 'createdAt', 'id', 'sourceUrl', 'status', 'tenantId']);
    const record = (await jobs.get(items[0]!.id))!;
    expect(record).toMatchObject({
      attempts: 0,
      upstreamCalls: 0,
      originalBytes: 0,
      originalContentType: '',
      originalKey: `originals/acme/${items[0]!.id}`,
      options: { size: 'hd' },
      renditionPlans: plans,
      webhookUrl: 'https://hooks.example/b',
    });
    const moved = await jobs.transition(items[0]!.id, ['queued'], { status: 'processing' });
    expect(moved).toMatchObject({ options: { size: 'hd' }, webhookUrl: 'https://hooks.example/b' });
  });

  it('send their own events only when the batch asks for item events', async () => {
    const { items } = await batchOf(1, { webhookUrl: 'https://hooks.example/b', itemEvents: false });
    expect((await jobs.get(items[0]!.id))!.webhookUrl).toBeUndefined();
  });
});

describe('batch creation', () => {
  it('does not complete a batch still being written, and completes it at commit when every item ended meanwhile', async () => {
    const batchId = newBatchId();
    await batches.open({ id: batchId, tenantId: 'acme', createdAt: new Date().toISOString() }, LEASE_MS);
    const [item] = itemsFor(batchId, 1);
    await batches.addItems(batchId, [item!], LEASE_MS);
    expect(await jobs.transition(item!.id, ['queued'], { status: 'canceled' })).not.toHaveProperty('batchCompleted');
    expect(await batches.get(batchId)).toMatchObject({ status: 'creating', ended: 1, total: 1 });
    expect(await batches.commit(batchId, { rejected: 0 })).toBe('completed');
    expect(await batches.get(batchId)).toMatchObject({ status: 'completed' });
  });

  it('fails a creation whose lease lapsed, cancels what it had accepted, and refuses its commit', async () => {
    const batchId = newBatchId();
    await batches.open({ id: batchId, tenantId: 'acme', createdAt: new Date().toISOString() }, 200);
    await batches.addItems(batchId, itemsFor(batchId, 3), 200);
    expect(await batches.creationState(batchId)).toBe('creating');
    expect(await failAbandonedCreations({ jobs, batches, removeBg })).not.toContain(batchId);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await batches.creationState(batchId)).toBe('abandoned');
    expect(await failAbandonedCreations({ jobs, batches, removeBg })).toContain(batchId);
    expect(await batches.get(batchId)).toMatchObject({ status: 'failed_to_create', total: 3, canceled: 3, ended: 3 });
    expect((await batches.get(batchId))!.completedAt).toBeDefined();
    expect(await batches.creationState(batchId)).toBe('failed');
    expect(await batches.commit(batchId, { rejected: 0 })).toBe('gone');
    expect(await batches.creatingIds(1_000)).not.toContain(batchId);
  });

  it('discards a refused batch with every item it had written', async () => {
    const batchId = newBatchId();
    await batches.open({ id: batchId, tenantId: 'acme', createdAt: new Date().toISOString() }, LEASE_MS);
    const items = itemsFor(batchId, 2_500);
    await batches.addItems(batchId, items, LEASE_MS);
    await batches.discard(batchId, 'acme');
    expect(await batches.get(batchId)).toBeNull();
    expect(await jobs.get(items[1_234]!.id)).toBeNull();
    expect(await redis.zscore(`${prefix}:tenant:acme:jobs`, items[0]!.id)).toBeNull();
  });
});

describe('the batch feeder', () => {
  it('queues a window of items, tops up as they start and end, and stops at the last one', async () => {
    const { batchId, items } = await batchOf(25, { rejected: 0 });
    const fair = { queue: removeBg, scheduler: makeFairScheduler({ redis, prefix }), attempts: 1, retryDelayMs: 1 };
    const feeder = makeBatchFeeder({ redis, prefix, fairEnqueue: fair, window: 10 });
    const queued = async () =>
      (await Promise.all(items.map((item) => removeBg.getJob(item.id)))).filter(Boolean).length;

    expect(await feeder.topUp(batchId)).toBe(10);
    expect(await feeder.topUp(batchId)).toBe(0);
    expect((await batches.get(batchId))!.fed).toBe(10);
    // Six items leave the queue: four wait, under half the window, so six more are queued.
    for (const item of items.slice(0, 6)) await jobs.transition(item.id, ['queued'], { status: 'processing' });
    expect(await feeder.topUp(batchId)).toBe(6);
    expect(await queued()).toBe(16);
    for (const item of items.slice(6, 16)) await jobs.transition(item.id, ['queued'], { status: 'canceled' });
    // The sweep's top-up: every batch with items left to hand over (the other tests' too).
    expect(await feeder.topUpAll()).toBeGreaterThanOrEqual(9);
    expect((await batches.get(batchId))!.fed).toBe(25);
    expect(await queued()).toBe(25);
    expect(await redis.zscore(`${prefix}:batches:feeding`, batchId)).toBeNull();
    // Queued in submission order: the last window's items are the batch's last.
    expect(await removeBg.getJob(items[24]!.id)).toBeDefined();
  });

  it('queues nothing of a canceled batch, and cancels its items without a queue entry', async () => {
    const { batchId, items } = await batchOf(5, { rejected: 0 });
    await batches.markCanceled(batchId);
    const feeder = makeBatchFeeder({
      redis,
      prefix,
      fairEnqueue: { queue: removeBg, scheduler: makeFairScheduler({ redis, prefix }), attempts: 1, retryDelayMs: 1 },
      window: 10,
    });
    expect(await feeder.topUp(batchId)).toBe(0);
    expect(await cancelQueuedItems({ jobs, batches, removeBg }, batchId)).toBe(5);
    expect(await jobs.get(items[4]!.id)).toMatchObject({ status: 'canceled' });
    expect(await batches.get(batchId)).toMatchObject({ status: 'canceled', canceled: 5, ended: 5 });
  });
});
