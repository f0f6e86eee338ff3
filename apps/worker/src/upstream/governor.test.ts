import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { randomBase62 } from '@cutout/shared/infra';
import { limiterFor, makeRateGovernor } from './governor.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefixes: string[] = [];

afterAll(async () => {
  for (const prefix of prefixes) await unlinkPrefix(redis, prefix);
  redis.disconnect();
});

function governor(settings: Parameters<typeof makeRateGovernor>[0]['settings'] = {}) {
  const prefix = `cutout-test-${randomBase62(10)}`;
  prefixes.push(prefix);
  let now = 1_000_000;
  const clock = { advance: (ms: number) => {
    now += ms;
  } };
  return { clock, governor: makeRateGovernor({ redis, prefix, settings, now: () => now }) };
}

/** Simulates a second of calls that all succeed at `perSecond`. */
async function succeedFor(g: ReturnType<typeof governor>, perSecond: number) {
  for (let i = 0; i < Math.round(perSecond); i++) await g.governor.recordSuccess();
  g.clock.advance(1_000);
  return g.governor.tick();
}

describe('rate governor', () => {
  let g: ReturnType<typeof governor>;
  beforeEach(() => {
    g = governor();
  });

  it('grows by half each second while the limit binds and nothing is refused', async () => {
    let state = await succeedFor(g, 5);
    for (let second = 0; second < 3; second++) state = await succeedFor(g, state.ratePerSecond);
    expect(state.ratePerSecond).toBeGreaterThan(5 * 1.5 ** 2);
    expect(state.mode).toBe('discovering');
  });

  it('does not grow while the workers use less than the rate allows', async () => {
    const first = await succeedFor(g, 5);
    const later = await succeedFor(g, 1);
    await succeedFor(g, 1);
    expect((await succeedFor(g, 1)).ratePerSecond).toBe(later.ratePerSecond);
    expect(later.ratePerSecond).toBeLessThanOrEqual(first.ratePerSecond * 1.5);
  });

  it('cuts the rate once per 429 episode, to 90 % of the rate that was binding', async () => {
    for (let second = 0; second < 3; second++) await succeedFor(g, 5);
    const binding = g.governor.current().ratePerSecond;
    await g.governor.recordRateLimited();
    await g.governor.recordRateLimited();
    await g.governor.recordRateLimited();
    expect(g.governor.current().ratePerSecond).toBeCloseTo(binding * 0.9, 5);
    expect(g.governor.current().reason).toMatch(/429/);
  });

  it('cuts from what got through when far more was allowed than used', async () => {
    for (let second = 0; second < 3; second++) await succeedFor(g, 5);
    for (let second = 0; second < 3; second++) await succeedFor(g, 1);
    await g.governor.recordRateLimited();
    expect(g.governor.current().ratePerSecond).toBeCloseTo(0.9, 5);
  });

  it('grows back quickly after a 429, then gently near the rate it happened at', async () => {
    for (let second = 0; second < 3; second++) await succeedFor(g, 5);
    const binding = g.governor.current().ratePerSecond;
    await g.governor.recordRateLimited();
    const rates: number[] = [g.governor.current().ratePerSecond];
    for (let second = 0; second < 30; second++) rates.push((await succeedFor(g, g.governor.current().ratePerSecond)).ratePerSecond);
    const steps = rates.slice(1).map((rate, i) => rate - rates[i]!);
    const firstGrowth = steps.find((step) => step > 0)!;
    expect(rates.at(-1)!).toBeGreaterThan(binding * 0.95);
    // Within ±5 % of the rate of the 429 the steps are smaller than on the way back up.
    const nearEdge = steps.filter((step, i) => step > 0 && rates[i]! >= binding * 0.95 && rates[i]! <= binding * 1.05);
    expect(nearEdge.length).toBeGreaterThan(0);
    expect(Math.max(...nearEdge)).toBeLessThan(firstGrowth);
  });

  it('never exceeds BYBYBG_RATE_LIMIT when it is set', async () => {
    const fixed = governor({ configuredPerSecond: 12 });
    let state = await succeedFor(fixed, 12);
    for (let second = 0; second < 10; second++) state = await succeedFor(fixed, 12);
    expect(state.ratePerSecond).toBe(12);
    expect(state.mode).toBe('fixed');
  });

  it('shares one rate between governors of the same prefix, as worker processes do', async () => {
    const prefix = `cutout-test-${randomBase62(10)}`;
    prefixes.push(prefix);
    let now = 5_000_000;
    const a = makeRateGovernor({ redis, prefix, now: () => now });
    const b = makeRateGovernor({ redis, prefix, now: () => now });
    for (let i = 0; i < 5; i++) await a.recordSuccess();
    now += 1_000;
    const grown = await a.tick();
    expect((await b.tick()).ratePerSecond).toBe(grown.ratePerSecond);
  });
});

describe('limiterFor', () => {
  it('starts one job per window up to 100/s, so starts stay evenly spread', () => {
    expect(limiterFor(20)).toEqual({ max: 1, duration: 50 });
    expect(limiterFor(50)).toEqual({ max: 1, duration: 20 });
    expect(limiterFor(2)).toEqual({ max: 1, duration: 500 });
    expect(limiterFor(500)).toEqual({ max: 5, duration: 10 });
  });
});
