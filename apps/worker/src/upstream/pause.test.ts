import { afterAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { bullPrefix, randomBase62 } from '@cutout/shared/infra';
import { makeUpstreamState } from '@cutout/shared/stores';
import { UpstreamError } from '../bybybg/errors.ts';
import { makeUpstreamPause } from './pause.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const queues: Queue[] = [];
const prefixes: string[] = [];

afterAll(async () => {
  for (const queue of queues) await queue.obliterate({ force: true }).then(() => queue.close());
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.unlink(...keys);
  }
  redis.disconnect();
});

const rateLimited = (retryAfterMs?: number) =>
  new UpstreamError({
    kind: 'rate_limited',
    code: 'upstream_rate_limited',
    message: 'ByByBG answered 429',
    status: 429,
    retryAfterMs,
  });

function pauseWithClock() {
  const prefix = `cutout-test-${randomBase62(10)}`;
  prefixes.push(prefix);
  const queue = new Queue('remove-bg', { connection: redis, prefix: bullPrefix(prefix) });
  queues.push(queue);
  let now = 1_000_000;
  const reported: { addedMs: number; started: boolean }[] = [];
  const pause = makeUpstreamPause({
    queue,
    upstream: makeUpstreamState({ redis, prefix }),
    random: () => 0.5,
    now: () => now,
    onPause: (addedMs, started) => reported.push({ addedMs, started }),
  });
  return {
    pause,
    reported,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('upstream pause reporting', () => {
  it('reports a new pause once, and only the time a later 429 adds to it', async () => {
    const { pause, reported, advance } = pauseWithClock();

    expect(await pause.pauseFor(rateLimited())).toBe(1_000);
    advance(200);
    // In flight when the pause began: same episode; its Retry-After lengthens the pause.
    await pause.pauseFor(rateLimited(2_000));
    advance(100);
    await pause.pauseFor(rateLimited(500));

    expect(reported).toEqual([
      { addedMs: 1_000, started: true },
      { addedMs: 1_200, started: false },
    ]);
  });

  it('reports a 429 after the pause ended as a new pause', async () => {
    const { pause, reported, advance } = pauseWithClock();

    await pause.pauseFor(rateLimited());
    advance(5_000);
    await pause.pauseFor(rateLimited());

    expect(reported.map((entry) => entry.started)).toEqual([true, true]);
    expect(reported[1]!.addedMs).toBe(2_000);
  });
});
