import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { randomBase62 } from '@cutout/shared/infra';
import { upstreamKeys } from '@cutout/shared/stores';
import { CONFIGURED_SHARE, CONFIGURED_TRIM, limiterFor, makeRateGovernor, type GovernorSettings } from './governor.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefixes: string[] = [];

afterAll(async () => {
  for (const prefix of prefixes) await unlinkPrefix(redis, prefix);
  redis.disconnect();
});

/** A governor on a fresh prefix with a fake clock that `acquire`'s waits advance. */
function governor(
  settings: GovernorSettings = {},
  prefix = `cutout-test-${randomBase62(10)}`,
  clock = { now: 1_000_000 },
) {
  prefixes.push(prefix);
  const g = makeRateGovernor({
    redis,
    prefix,
    settings,
    now: () => clock.now,
    wait: async (ms) => {
      clock.now += ms;
    },
  });
  return {
    clock,
    prefix,
    governor: g,
    advance: (ms: number) => {
      clock.now += ms;
    },
  };
}
type G = ReturnType<typeof governor>;

/**
 * Drives `seconds` of an upstream with a token bucket of `limit`/s (burst 5) and calls
 * answered at once: every call takes its slot from the pacer, as the workers do; the
 * governor ticks every second. Returns successes and 429s per second.
 */
async function drive(
  g: G,
  { seconds, limit, burst = 5 }: { seconds: number; limit: number | ((second: number) => number); burst?: number },
) {
  const perSecond: { ok: number; limited: number; rate: number }[] = [];
  let tokens = burst;
  let last = g.clock.now;
  let nextTick = g.clock.now + 1_000;
  const end = g.clock.now + seconds * 1_000;
  let second = { ok: 0, limited: 0, rate: 0 };
  while (g.clock.now < end) {
    await g.governor.acquire();
    const index = perSecond.length;
    const L = typeof limit === 'number' ? limit : limit(index);
    tokens = Math.min(burst, tokens + ((g.clock.now - last) * L) / 1000);
    last = g.clock.now;
    if (tokens >= 1) {
      tokens -= 1;
      second.ok += 1;
      await g.governor.recordSuccess();
    } else {
      second.limited += 1;
      await g.governor.recordRateLimited();
    }
    if (g.clock.now >= nextTick) {
      nextTick += 1_000;
      second.rate = (await g.governor.tick()).ratePerSecond;
      perSecond.push(second);
      second = { ok: 0, limited: 0, rate: 0 };
    }
  }
  return perSecond;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('rate governor, discovering the limit', () => {
  let g: G;
  beforeEach(() => {
    g = governor();
  });

  it('more than doubles the rate each second while calls succeed and the rate binds', async () => {
    const seconds = await drive(g, { seconds: 3, limit: 1_000 });
    expect(seconds[2]!.rate).toBeGreaterThan(5 * 2 ** 3);
    expect(g.governor.current().mode).toBe('discovering');
  });

  it('does not grow while the workers use less than the rate allows', async () => {
    await drive(g, { seconds: 2, limit: 1_000 });
    const before = g.governor.current().ratePerSecond;
    // A trickle of calls far apart never waits for a slot: the rate does not bind.
    for (let i = 0; i < 5; i++) {
      g.advance(1_000);
      await g.governor.acquire();
      await g.governor.recordSuccess();
      await g.governor.tick();
    }
    expect(g.governor.current().ratePerSecond).toBe(before);
  });

  it('spaces the starts of every process evenly at the shared rate', async () => {
    const other = makeRateGovernor({
      redis,
      prefix: g.prefix,
      now: () => g.clock.now,
      wait: async (ms) => {
        g.clock.now += ms;
      },
    });
    const starts: number[] = [];
    for (let i = 0; i < 10; i++) {
      await (i % 2 === 0 ? g.governor : other).acquire();
      starts.push(g.clock.now);
    }
    const gaps = starts.slice(1).map((at, i) => at - starts[i]!);
    for (const gap of gaps) expect(gap).toBeCloseTo(1000 / 5, 5);
  });

  it('from a cold start finds an unknown limit: most of it used, few 429s', async () => {
    const L = 40;
    const seconds = await drive(g, { seconds: 30, limit: L });
    const ok = sum(seconds.map((s) => s.ok));
    const limited = sum(seconds.map((s) => s.limited));
    expect(ok / (L * 30)).toBeGreaterThanOrEqual(0.9);
    expect(limited / (ok + limited)).toBeLessThanOrEqual(0.02);
    // The last ten seconds: the steady state.
    expect(sum(seconds.slice(-10).map((s) => s.ok)) / (L * 10)).toBeGreaterThanOrEqual(0.97);
    expect(g.governor.current().ratePerSecond).toBeGreaterThan(L * 0.9);
    expect(g.governor.current().ratePerSecond).toBeLessThan(L * 1.1);
  });

  it('takes the successes of a saturated second as the limit instead of cutting a fixed share', async () => {
    await drive(g, { seconds: 10, limit: 30 });
    expect(g.governor.current().ratePerSecond).toBeGreaterThan(30 * 0.9);
    expect(g.governor.current().ratePerSecond).toBeLessThan(30 * 1.1);
  });

  it('never cuts to a count that start-up depressed', async () => {
    // The first 429 comes within the first second, when only a few calls had been made.
    await g.governor.acquire();
    await g.governor.recordSuccess();
    await g.governor.recordRateLimited();
    expect(g.governor.current().ratePerSecond).toBeCloseTo(5 * 0.9, 5);
  });

  it('finds a raised limit (a plan upgrade) within a minute', async () => {
    const seconds = await drive(g, { seconds: 80, limit: (second) => (second < 20 ? 20 : 60) });
    const found = seconds.findIndex((s, index) => index >= 20 && s.ok >= 60 * 0.9);
    expect(found).toBeGreaterThan(20);
    expect(found - 20).toBeLessThanOrEqual(60);
    const limited = sum(seconds.map((s) => s.limited));
    expect(limited / sum(seconds.map((s) => s.ok + s.limited))).toBeLessThanOrEqual(0.02);
  });

  it('keeps the discovered rate in Redis for workers that start later', async () => {
    await drive(g, { seconds: 10, limit: 30 });
    const found = g.governor.current().ratePerSecond;
    // Every worker restarted: new governors on the same prefix, nothing in memory.
    const restarted = governor({}, g.prefix, g.clock);
    expect((await restarted.governor.tick()).ratePerSecond).toBeCloseTo(found, 0);
    expect(restarted.governor.current().ratePerSecond).toBeGreaterThan(30 * 0.9);
    // It goes on from there: no new probe from 5/s.
    const seconds = await drive(restarted, { seconds: 5, limit: 30 });
    expect(sum(seconds.map((s) => s.ok)) / (30 * 5)).toBeGreaterThanOrEqual(0.95);
  });
});

describe('rate governor, with BYBYBG_RATE_LIMIT', () => {
  it('never exceeds it', async () => {
    const g = governor({ configuredPerSecond: 12 });
    const seconds = await drive(g, { seconds: 10, limit: 1_000 });
    expect(g.governor.current()).toMatchObject({ ratePerSecond: 12 * CONFIGURED_SHARE, mode: 'fixed' });
    for (const second of seconds.slice(1)) expect(second.ok).toBeLessThanOrEqual(13);
  });

  it('an early 429 with few successes counted trims the rate by at most 10 % and it grows back within seconds', async () => {
    const g = governor({ configuredPerSecond: 50 });
    await g.governor.acquire();
    await g.governor.recordSuccess();
    await g.governor.recordRateLimited();
    await g.governor.recordRateLimited();
    expect(g.governor.current().ratePerSecond).toBeGreaterThanOrEqual(50 * 0.9);
    expect(g.governor.current().reason).toMatch(/429/);
    const seconds = await drive(g, { seconds: 5, limit: 1_000 });
    expect(seconds.at(-1)!.rate).toBe(50 * CONFIGURED_SHARE);
  });

  it('one trim per 429 episode, however many 429s it holds', async () => {
    const g = governor({ configuredPerSecond: 50 });
    for (let i = 0; i < 5; i++) {
      await g.governor.recordRateLimited();
      g.advance(100);
    }
    expect(g.governor.current().ratePerSecond).toBeCloseTo(50 * CONFIGURED_SHARE * CONFIGURED_TRIM, 5);
  });

  it('does not pace calls inside a 429 pause', async () => {
    const g = governor({ configuredPerSecond: 50 });
    await redis.set(upstreamKeys(g.prefix).rateLimitPause, '1', 'PX', 1_500);
    const before = g.clock.now;
    await g.governor.acquire();
    expect(g.clock.now - before).toBeGreaterThanOrEqual(1_400);
  });
});

describe('limiterFor', () => {
  it('is a safety net at twice the rate, one job per window up to 100/s', () => {
    expect(limiterFor(10)).toEqual({ max: 1, duration: 50 });
    expect(limiterFor(25)).toEqual({ max: 1, duration: 20 });
    expect(limiterFor(1)).toEqual({ max: 1, duration: 500 });
    expect(limiterFor(250)).toEqual({ max: 5, duration: 10 });
  });
});
