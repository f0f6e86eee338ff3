import { afterAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { randomBase62 } from './ids.ts';
import { createMetrics } from './metrics.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const queues: Queue[] = [];

afterAll(async () => {
  for (const queue of queues) await queue.obliterate({ force: true }).then(() => queue.close());
  redis.disconnect();
});

function queue(name: string): Queue {
  const created = new Queue(name, { connection: redis, prefix: `cutout-test-${randomBase62(10)}:bull` });
  queues.push(created);
  return created;
}

const line = (text: string, start: string) => text.split('\n').find((entry) => entry.startsWith(start));

describe('metrics', () => {
  it('keeps each registry to itself, so several apps in one process do not collide', async () => {
    const first = createMetrics({ defaultMetrics: false });
    const second = createMetrics();
    first.jobsAccepted.inc(2);

    expect(line(await first.registry.metrics(), 'cutout_jobs_accepted_total ')).toBe('cutout_jobs_accepted_total 2');
    expect(line(await second.registry.metrics(), 'cutout_jobs_accepted_total ')).toBe('cutout_jobs_accepted_total 0');
    expect(await second.registry.metrics()).toContain('process_cpu_user_seconds_total');
  });

  it('reads queue depth and the oldest waiting job at scrape time', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const images = queue('remove-bg');
    await images.add('remove-bg', {}, { timestamp: Date.now() - 90_000 });
    await images.add('remove-bg', {});
    metrics.trackQueues([images]);

    const text = await metrics.registry.metrics();
    expect(line(text, 'cutout_queue_depth{queue="remove-bg",state="waiting"}')).toBe(
      'cutout_queue_depth{queue="remove-bg",state="waiting"} 2',
    );
    const oldest = Number(line(text, 'cutout_queue_oldest_waiting_seconds{queue="remove-bg"}')?.split(' ')[1]);
    expect(oldest).toBeGreaterThanOrEqual(90);
  });

  it('lets the first process part that tracks queues keep them, until it stops', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const stop = metrics.trackQueues([queue('remove-bg')]);
    metrics.trackQueues([queue('webhooks')]);
    expect(await metrics.registry.metrics()).not.toContain('queue="webhooks"');

    stop();
    expect(await metrics.registry.metrics()).not.toContain('cutout_queue_depth{');
  });

  it('still answers without queue series when Redis cannot be reached', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const errors: unknown[] = [];
    const offline = new Redis('redis://127.0.0.1:9', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const unreachable = new Queue('remove-bg', { connection: offline, prefix: 'cutout-test-offline:bull' });
    unreachable.on('error', () => undefined);
    metrics.trackQueues([unreachable], (error) => errors.push(error));
    metrics.setUpstreamRate({ ratePerSecond: 4, mode: 'discovering', reason: 'starting' });

    const text = await metrics.registry.metrics();
    expect(text).not.toContain('cutout_queue_depth{');
    expect(text).toContain('cutout_upstream_rate_per_second{mode="discovering"} 4');
    expect(errors.length).toBeGreaterThan(0);
    await unreachable.close().catch(() => undefined);
    offline.disconnect();
  });
});
