import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { budgetPeriods, makeBudgets, type Budgets } from './budgets.ts';
import { createRedis, type Redis } from '../infra/redis.ts';
import { makeUsage } from './usage.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
let redis: Redis;
let budgets: Budgets;

beforeAll(async () => {
  redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await redis.connect();
  budgets = makeBudgets({ redis, prefix });
});
afterAll(async () => {
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

const at = (iso: string) => Date.parse(iso);

describe('budgetPeriods', () => {
  it('names the UTC day and month and when each ends', () => {
    expect(budgetPeriods(at('2026-12-31T23:59:59.999Z'))).toEqual({
      day: '2026-12-31',
      month: '2026-12',
      dayStarts: at('2026-12-31T00:00:00.000Z'),
      dayEnds: at('2027-01-01T00:00:00.000Z'),
      monthEnds: at('2027-01-01T00:00:00.000Z'),
    });
    expect(budgetPeriods(at('2026-02-10T05:00:00.000Z')).monthEnds).toBe(at('2026-03-01T00:00:00.000Z'));
  });

  it('gives the periods of each instant, also when the day asked for last is kept', () => {
    expect(budgetPeriods(at('2026-12-31T12:00:00.000Z')).day).toBe('2026-12-31');
    // The first millisecond of the next day, the last of the day before, and back.
    expect(budgetPeriods(at('2027-01-01T00:00:00.000Z'))).toMatchObject({ day: '2027-01-01', month: '2027-01' });
    expect(budgetPeriods(at('2026-12-31T23:59:59.999Z'))).toMatchObject({ day: '2026-12-31', month: '2026-12' });
    expect(budgetPeriods(at('2026-12-31T00:00:00.000Z')).day).toBe('2026-12-31');
    expect(budgetPeriods(at('2026-12-30T23:59:59.999Z')).day).toBe('2026-12-30');
  });
});

describe('budgets', () => {
  it('lets exactly the daily limit through when 60 reservations race', async () => {
    await budgets.setLimits('racer', { daily: 10 });
    const now = at('2026-11-26T12:00:00.000Z');
    const results = await Promise.all(Array.from({ length: 60 }, () => budgets.reserve('racer', now)));
    expect(results.filter((result) => result.ok)).toHaveLength(10);
    expect(results.find((result) => !result.ok)).toEqual({
      ok: false,
      exhausted: ['daily'],
      resetsAt: at('2026-11-27T00:00:00.000Z'),
    });
    expect(await budgets.state('racer', now)).toEqual({
      daily: { limit: 10, used: 10, resetsAt: '2026-11-27T00:00:00.000Z' },
      monthly: null,
    });
  });

  it('counts the day in the usage record, and gives a refunded call back to the day and month it was taken from', async () => {
    await budgets.setLimits('refunds', { daily: 2, monthly: 5 });
    const first = await budgets.reserve('refunds', at('2026-11-30T23:59:00.000Z'));
    if (!first.ok) throw new Error('refused');
    expect((await makeUsage({ redis, prefix }).days('refunds', '2026-11-30', '2026-11-30'))[0]?.upstream_calls).toBe(1);
    await budgets.refund(first.reservation);
    await budgets.refund(first.reservation); // never below zero
    expect((await budgets.state('refunds', at('2026-11-30T23:59:30.000Z'))).daily?.used).toBe(0);
    expect((await budgets.state('refunds', at('2026-11-30T23:59:30.000Z'))).monthly?.used).toBe(0);
  });

  it('refuses once the month is used up though the day has room, until the next month', async () => {
    await budgets.setLimits('monthly', { daily: 100, monthly: 3 });
    for (const day of ['2026-10-01', '2026-10-15', '2026-10-31'])
      expect((await budgets.reserve('monthly', at(`${day}T10:00:00.000Z`))).ok).toBe(true);
    expect(await budgets.reserve('monthly', at('2026-10-31T11:00:00.000Z'))).toEqual({
      ok: false,
      exhausted: ['monthly'],
      resetsAt: at('2026-11-01T00:00:00.000Z'),
    });
    expect(await budgets.room('monthly', at('2026-10-31T11:00:00.000Z'))).toBe(0);
    expect((await budgets.reserve('monthly', at('2026-11-01T00:00:00.000Z'))).ok).toBe(true);
  });

  it('waits for the later reset when both periods are used up', async () => {
    await budgets.setLimits('both', { daily: 1, monthly: 1 });
    await budgets.reserve('both', at('2026-11-10T10:00:00.000Z'));
    expect(await budgets.reserve('both', at('2026-11-10T11:00:00.000Z'))).toEqual({
      ok: false,
      exhausted: ['daily', 'monthly'],
      resetsAt: at('2026-12-01T00:00:00.000Z'),
    });
  });

  it('counts without limits, has unlimited room, and lets a raised or cleared budget through at once', async () => {
    const now = at('2026-11-26T12:00:00.000Z');
    expect(await budgets.room('free', now)).toBe(Infinity);
    expect((await budgets.reserve('free', now)).ok).toBe(true);
    expect(await budgets.state('free', now)).toEqual({ daily: null, monthly: null });

    expect(await budgets.setLimits('free', { daily: 1 })).toEqual({ daily: 1, monthly: null });
    expect((await budgets.reserve('free', now)).ok).toBe(false);
    expect(await budgets.setLimits('free', { daily: 3, monthly: 50 })).toEqual({ daily: 3, monthly: 50 });
    expect(await budgets.room('free', now)).toBe(2);
    expect(await budgets.setLimits('free', { daily: null })).toEqual({ daily: null, monthly: 50 });
    await budgets.clear('free');
    expect(await budgets.limits('free')).toEqual({ daily: null, monthly: null });
  });

  it('refuses every call with a budget of 0', async () => {
    await budgets.setLimits('frozen', { daily: 0 });
    expect((await budgets.reserve('frozen')).ok).toBe(false);
  });
});
