import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFairScheduler, MAX_PRIORITY, priorityOfSlot, type FairScheduler } from './fairness.ts';
import { createRedis, type Redis } from '../infra/redis.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
let redis: Redis;
let fair: FairScheduler;

beforeAll(async () => {
  redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await redis.connect();
  fair = makeFairScheduler({ redis, prefix });
});
afterAll(async () => {
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

describe('fair scheduler', () => {
  it('gives a busy flow consecutive slots and starts a newly active flow at the served position', async () => {
    expect(await fair.reserve('a:batches', 1000)).toBe(0);
    expect(await fair.reserve('a:batches', 10)).toBe(1000);
    await fair.served(40);
    // A flow idle so far starts at the head, beside the busy flow's slot 40, not after its backlog.
    expect(await fair.reserve('b:jobs', 1)).toBe(40);
    expect(await fair.reserve('b:jobs', 1)).toBe(41);
  });

  it('never moves the served position back', async () => {
    await fair.served(500);
    await fair.served(100);
    expect(await fair.reserve('c:jobs', 1)).toBe(500);
  });

  it('maps slots to BullMQ priorities within 1 … 2^21', () => {
    expect(priorityOfSlot(0)).toBe(1);
    expect(priorityOfSlot(MAX_PRIORITY - 2)).toBe(MAX_PRIORITY - 1);
    expect(priorityOfSlot(MAX_PRIORITY - 1)).toBe(1);
  });
});
