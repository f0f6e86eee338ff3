import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { bullPrefix, randomBase62 } from '@cutout/shared/infra';
import { makeUpstreamState } from '@cutout/shared/stores';
import type { ProbeOutcome } from '../bybybg/client.ts';
import { makeQueueHold, type QueueHold } from './queue-hold.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const queues: Queue[] = [];
const holds: QueueHold[] = [];
const prefixes: string[] = [];

afterAll(async () => {
  for (const hold of holds) hold.stop();
  for (const queue of queues) await queue.obliterate({ force: true }).then(() => queue.close());
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.unlink(...keys);
  }
  redis.disconnect();
});

/** `workers` queue holds over one Redis prefix, as separate worker processes have; probes answer `answer()`. */
function setup({
  workers = 1,
  probeIntervalMs = 200,
  budgetMs,
}: {
  workers?: number;
  probeIntervalMs?: number;
  budgetMs?: number;
} = {}) {
  const prefix = `cutout-test-${randomBase62(10)}`;
  prefixes.push(prefix);
  const queue = new Queue('remove-bg', { connection: redis, prefix: bullPrefix(prefix) });
  queues.push(queue);
  const upstream = makeUpstreamState({ redis, prefix });
  let answer: ProbeOutcome = { kind: 'answered', status: 402 };
  let probes = 0;
  const changes: string[] = [];
  const made = Array.from({ length: workers }, () =>
    makeQueueHold({
      redis,
      prefix,
      queue,
      upstream,
      bybybg: {
        probe: async () => {
          probes += 1;
          return answer;
        },
      },
      policies: { upstream_unauthorized: { probeIntervalMs }, upstream_out_of_credit: { probeIntervalMs, budgetMs } },
      onChange: (reason, change) => void changes.push(`${reason} ${change}`),
      log: pino({ level: 'silent' }),
    }),
  );
  holds.push(...made);
  return {
    queue,
    upstream,
    holds: made,
    changes,
    probes: () => probes,
    answer: (next: ProbeOutcome) => {
      answer = next;
    },
  };
}

describe('queue hold', () => {
  it('holds the queue on a 402, probes once per interval across workers, and resumes when a probe succeeds', async () => {
    const { queue, upstream, holds, probes, answer, changes } = setup({ workers: 3, probeIntervalMs: 200 });
    await holds[0]!.hold('upstream_out_of_credit', 'ByByBG says the account is out of credit (HTTP 402)');
    for (const hold of holds) hold.start();
    expect(await queue.isPaused()).toBe(true);

    const started = Date.now();
    await sleep(1_100);
    // The hold set the probe lock: the first probe comes an interval later, then one per interval.
    expect(probes()).toBeLessThanOrEqual(Math.floor((Date.now() - started) / 200));
    expect(probes()).toBeGreaterThanOrEqual(2);
    expect(await queue.isPaused()).toBe(true);

    answer({ kind: 'answered', status: 200 });
    await sleep(500);
    expect(await upstream.holds()).toEqual({});
    expect(await queue.isPaused()).toBe(false);
    expect(changes).toEqual(['upstream_out_of_credit started', 'upstream_out_of_credit ended']);
  });

  it('raises the key hold when a probe finds every key refused, and ends only the hold a later answer clears', async () => {
    const { queue, upstream, holds, answer } = setup({ probeIntervalMs: 100 });
    await holds[0]!.hold('upstream_out_of_credit', '402');
    answer({ kind: 'unauthorized' });
    holds[0]!.start();
    await sleep(400);
    expect(Object.keys(await upstream.holds()).sort()).toEqual(['upstream_out_of_credit', 'upstream_unauthorized']);

    // A key works again but the account is still empty.
    answer({ kind: 'answered', status: 402 });
    await sleep(400);
    expect(Object.keys(await upstream.holds())).toEqual(['upstream_out_of_credit']);
    expect(await queue.isPaused()).toBe(true);
  });

  it('stops holding the queue once the credit hold outlived its budget, and keeps probing', async () => {
    const { queue, upstream, holds, probes } = setup({ probeIntervalMs: 100, budgetMs: 300 });
    await holds[0]!.hold('upstream_out_of_credit', '402');
    holds[0]!.start();
    expect(await queue.isPaused()).toBe(true);
    await sleep(700);
    expect(await queue.isPaused()).toBe(false);
    expect(await upstream.hold('upstream_out_of_credit')).not.toBeNull();
    const before = probes();
    await sleep(300);
    expect(probes()).toBeGreaterThan(before);
  });
});
