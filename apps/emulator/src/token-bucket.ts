import type { RateLimit } from './faults.ts';

export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left after this call. */
  remaining: number;
  /** 0 when allowed; otherwise how long until one token is back. */
  retryAfterMs: number;
  /** How long until the bucket is full again. */
  resetMs: number;
}

export interface TokenBucket {
  readonly limit: RateLimit;
  take(key: string): TakeResult;
}

interface BucketState {
  tokens: number;
  updatedAt: number;
}

/**
 * Per-key token bucket: each key starts full (`burst` tokens) and refills continuously at
 * `perSecond`. State is computed lazily on `take`, so there are no timers to clean up and
 * the clock can be faked in tests.
 */
export function makeTokenBucket(limit: RateLimit, now: () => number = Date.now): TokenBucket {
  const buckets = new Map<string, BucketState>();
  const perMs = limit.perSecond / 1000;

  function refill(key: string, at: number): BucketState {
    const state = buckets.get(key);
    if (!state) {
      const fresh = { tokens: limit.burst, updatedAt: at };
      buckets.set(key, fresh);
      return fresh;
    }
    // max(0, …) guards against a clock that goes backwards.
    const elapsed = Math.max(0, at - state.updatedAt);
    state.tokens = Math.min(limit.burst, state.tokens + elapsed * perMs);
    state.updatedAt = at;
    return state;
  }

  function take(key: string): TakeResult {
    const state = refill(key, now());
    // The epsilon absorbs float error from refills (e.g. 3 × 0.1 s at 10/s = 0.9999…).
    const allowed = state.tokens >= 1 - 1e-9;
    if (allowed) state.tokens = Math.max(0, state.tokens - 1);
    return {
      allowed,
      remaining: Math.floor(state.tokens),
      retryAfterMs: allowed ? 0 : Math.max(1, Math.ceil((1 - state.tokens) / perMs)),
      resetMs: Math.ceil((limit.burst - state.tokens) / perMs),
    };
  }

  return { limit, take };
}

/** The headers ByByBG-style APIs send: limit, whole tokens left, seconds until full. */
export function rateLimitHeaders(
  limit: RateLimit,
  result: TakeResult,
  withLimitHeaders = true,
): Record<string, string> {
  const headers: Record<string, string> = withLimitHeaders
    ? {
        'x-ratelimit-limit': String(limit.burst),
        'x-ratelimit-remaining': String(result.remaining),
        'x-ratelimit-reset': String(Math.ceil(result.resetMs / 1000)),
      }
    : {};
  // Retry-After is whole seconds and at least 1, so a client that honours it never spins.
  if (!result.allowed) headers['retry-after'] = String(Math.max(1, Math.ceil(result.retryAfterMs / 1000)));
  return headers;
}
