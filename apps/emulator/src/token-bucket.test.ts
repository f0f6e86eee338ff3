import { describe, expect, it } from 'vitest';
import { fakeClock } from './test-support.ts';
import { makeTokenBucket, rateLimitHeaders } from './token-bucket.ts';

describe('token bucket', () => {
  it('allows a full burst, then refuses with the time until the next token', () => {
    const clock = fakeClock();
    const bucket = makeTokenBucket({ perSecond: 2, burst: 3 }, clock.now);
    expect([bucket.take('a'), bucket.take('a'), bucket.take('a')].map((r) => r.allowed)).toEqual([true, true, true]);
    const refused = bucket.take('a');
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 500, resetMs: 1500 });
  });

  it('refills over time up to the burst, not beyond', () => {
    const clock = fakeClock();
    const bucket = makeTokenBucket({ perSecond: 10, burst: 2 }, clock.now);
    bucket.take('a');
    bucket.take('a');
    expect(bucket.take('a').allowed).toBe(false);
    clock.advance(100);
    expect(bucket.take('a')).toMatchObject({ allowed: true, remaining: 0 });
    clock.advance(60_000);
    expect(bucket.take('a')).toMatchObject({ allowed: true, remaining: 1, resetMs: 100 });
  });

  it('keeps a separate bucket per key', () => {
    const bucket = makeTokenBucket({ perSecond: 1, burst: 1 }, fakeClock().now);
    expect(bucket.take('a').allowed).toBe(true);
    expect(bucket.take('a').allowed).toBe(false);
    expect(bucket.take('b').allowed).toBe(true);
  });

  it('does not lose tokens to float error on small refills', () => {
    const clock = fakeClock();
    const bucket = makeTokenBucket({ perSecond: 10, burst: 1 }, clock.now);
    bucket.take('a');
    for (let i = 0; i < 3; i++) clock.advance(100 / 3);
    clock.advance(0.0001);
    expect(bucket.take('a').allowed).toBe(true);
  });

  it('states Retry-After in whole seconds, at least 1, and X-RateLimit-* on every answer', () => {
    const limit = { perSecond: 20, burst: 5 };
    expect(rateLimitHeaders(limit, { allowed: false, remaining: 0, retryAfterMs: 50, resetMs: 250 })).toEqual({
      'retry-after': '1',
      'x-ratelimit-limit': '5',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '1',
    });
    expect(rateLimitHeaders(limit, { allowed: true, remaining: 4, retryAfterMs: 0, resetMs: 50 })).toEqual({
      'x-ratelimit-limit': '5',
      'x-ratelimit-remaining': '4',
      'x-ratelimit-reset': '1',
    });
  });
});
