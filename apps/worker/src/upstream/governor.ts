import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { upstreamKeys, type RateState } from '@cutout/shared/stores';

/**
 * Finds and holds the upstream request rate for all worker processes together, in Redis,
 * and paces every call to it: each call takes the next start slot of one shared schedule,
 * so starts stay evenly spaced across processes and a small upstream burst allowance is
 * never overrun.
 *
 * With BYBYBG_RATE_LIMIT set the rate is the operator's word: a 429 trims it by 10 % for
 * a moment and it grows back within two seconds. Without it the limit is discovered: the
 * rate roughly doubles each second while calls succeed and the rate is what holds the
 * workers back; at a 429 the calls that succeeded in the last second, while the workers
 * were saturating the rate, are taken as the limit; then the rate creeps around that
 * estimate, and once well past it without a 429 (a plan upgrade) it accelerates again.
 */
export interface RateGovernor {
  /** The rate this process should apply now (refreshed by `tick`, `acquire` and the records). */
  current(): RateState;
  /** Waits for this call's start slot in the shared schedule (and for any 429 pause). */
  acquire(): Promise<void>;
  recordSuccess(): Promise<void>;
  /** A 429: returns the state after it, whose mode tells whether the whole queue should pause. */
  recordRateLimited(): Promise<RateState>;
  /** ByByBG says the allowance is used up (`X-RateLimit-Remaining: 0`): grow gently from now on. */
  recordAtLimit(): Promise<void>;
  /** Grows the shared rate when due and reads it back; call about once a second. */
  tick(): Promise<RateState>;
}

export interface GovernorSettings {
  /** BYBYBG_RATE_LIMIT: a ceiling never exceeded; unset means discover it. */
  configuredPerSecond?: number;
  /** Start of discovery; low enough not to start with a storm. */
  initialPerSecond?: number;
  /** Upper bound of discovery, a safety net. */
  maxPerSecond?: number;
  minPerSecond?: number;
}

/** The share of BYBYBG_RATE_LIMIT the calls are paced at. */
export const CONFIGURED_SHARE = 0.97;
/**
 * A 429 under BYBYBG_RATE_LIMIT trims the paced rate to this share of it for about a second.
 * Such a 429 is arrivals bunched by jitter, not a wrong limit (repeated ones pause the queue):
 * a 7 % trim cost about 2 % of the throughput at a 429 every 3 s.
 */
export const CONFIGURED_TRIM = 0.98;
/** Success counters are kept per 100 ms, so the last second can be summed at any moment. */
const BUCKET_MS = 100;
/** A slot is granted at most this far ahead: a cut of the rate applies to calls not yet granted. */
const HORIZON_MS = 100;

/** Shared by every script: the state hash, read with the defaults of this configuration. */
const READ_STATE = `
local state = KEYS[1]
local now = tonumber(ARGV[1])
local maxRate = tonumber(ARGV[5])
local minRate = tonumber(ARGV[6])
local mode = ARGV[3]
local stored = redis.call('HMGET', state, 'rate', 'phase', 'ceiling', 'lastIncreaseAt', 'lastDecreaseAt', 'boundAt', 'aboveAt', 'reason', 'mode')
local rate = tonumber(stored[1] or ARGV[2])
-- a rate stored under another configuration does not carry over
if stored[9] and stored[9] ~= mode then rate = tonumber(ARGV[2]) end
rate = math.max(minRate, math.min(maxRate, rate))
local phase = stored[2] or ARGV[4]
if stored[9] and stored[9] ~= mode then phase = ARGV[4] end
local ceiling = tonumber(stored[3] or '0')
local lastIncrease = tonumber(stored[4] or '0')
local lastDecrease = tonumber(stored[5] or '0')
local boundAt = tonumber(stored[6] or '0')
local aboveAt = tonumber(stored[7] or '0')
local reason = stored[8] or 'starting'
`;

const SAVE_STATE = `
redis.call('HSET', state, 'rate', tostring(rate), 'mode', mode, 'phase', phase, 'ceiling', tostring(ceiling),
  'lastIncreaseAt', tostring(lastIncrease), 'lastDecreaseAt', tostring(lastDecrease), 'boundAt', tostring(boundAt),
  'aboveAt', tostring(aboveAt), 'reason', reason)
`;

const RETURN_STATE = `return {tostring(rate), mode, reason}`;

/**
 * The next start slot: never before the previous one plus 1/rate, nor inside a 429 pause.
 * Returns {wait ms, 1 when granted}; a slot further ahead than the horizon is not granted,
 * the caller comes back after the wait. A caller that had to wait shows the rate binds.
 * KEYS: state, pause key. ARGV[7]: horizon ms.
 */
const ACQUIRE = `${READ_STATE}
local horizon = tonumber(ARGV[7])
local next = tonumber(redis.call('HGET', state, 'next') or '0')
-- a schedule far ahead is stale (another configuration, a clock that jumped)
if next > now + 5000 then next = now end
local earliest = now
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then
  earliest = now + pause
  redis.call('HSET', state, 'pausedAt', tostring(now + pause))
end
local slot = math.max(earliest, next)
if slot > now then redis.call('HSET', state, 'boundAt', tostring(now)) end
if slot - now > horizon then
  return {tostring(slot - now - horizon), '0', tostring(rate), mode, reason}
end
redis.call('HSET', state, 'next', tostring(slot + 1000 / rate))
return {tostring(slot - now), '1', tostring(rate), mode, reason}`;

/**
 * Counts a success in its 100 ms bucket. While probing, each success adds 0.8/s to the rate
 * when the rate bound in the last second: the rate grows ×e^0.8 (≈ ×2.2) a second.
 * KEYS: state, this bucket's counter.
 */
const SUCCESS = `${READ_STATE}
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 5000)
if mode == 'discovering' and phase == 'probe' and now - boundAt < 1000 and rate < maxRate then
  rate = math.min(maxRate, rate + 0.8)
  reason = 'probing: no 429 yet'
  redis.call('HSET', state, 'rate', tostring(rate), 'reason', reason, 'mode', mode, 'phase', phase)
end
${RETURN_STATE}`;

/**
 * Once a second at most, and not within 1 s of a 429, while the rate binds:
 * - configured: back towards BYBYBG_RATE_LIMIT by 5 % of it a second;
 * - discovering below 95 % of the estimate: +5 % a second;
 * - within [0.95, 1.02] × the estimate: +1 % a second, so the edge is met now and then;
 * - past it with no 429: the estimate was low or is old (a plan upgrade); growth starts
 *   at 2 % and doubles every 2 s, so a doubled limit is found in about 10 s.
 */
const TICK = `${READ_STATE}
if now - lastIncrease >= 1000 and now - lastDecrease >= 1000 then
  lastIncrease = now
  if mode == 'fixed' then
    if rate < maxRate then
      rate = math.min(maxRate, rate + maxRate * 0.05)
      reason = 'back towards BYBYBG_RATE_LIMIT after a 429'
    else
      reason = 'at BYBYBG_RATE_LIMIT'
    end
  elseif now - boundAt < 1500 and phase ~= 'probe' then
    if ceiling <= 0 or rate < ceiling * 0.95 then
      rate = rate * 1.05
      aboveAt = 0
      reason = 'growing back towards the limit found'
    elseif rate <= ceiling * 1.02 then
      rate = rate * 1.01
      aboveAt = 0
      reason = 'near the limit found'
    else
      if aboveAt == 0 then aboveAt = now end
      rate = rate * (1 + math.min(0.3, 0.02 * 2 ^ ((now - aboveAt) / 2000)))
      reason = 'past the limit found without a 429: looking for a higher one'
    end
    rate = math.min(maxRate, rate)
  end
end
${SAVE_STATE}
${RETURN_STATE}`;

/**
 * One change per 429 episode (1 s): configured, a trim to CONFIGURED_TRIM of the paced rate;
 * discovering, when the rate bound through the last whole second and no cut or start-up
 * fell into it, the successes of that second are the limit and the rate goes to 97 % of
 * them (never above the rate); otherwise (a depressed count) a cut to 90 % of the rate.
 * KEYS: state, then the counters of the last ten whole 100 ms buckets. ARGV[7]: first call at.
 */
const RATE_LIMITED = `${READ_STATE}
if now - lastDecrease >= 1000 then
  if mode == 'fixed' then
    rate = math.max(minRate, maxRate * ${CONFIGURED_TRIM})
    reason = 'ByByBG answered 429 under BYBYBG_RATE_LIMIT: trimmed for a moment'
  else
    local measured = 0
    for i = 2, #KEYS do measured = measured + tonumber(redis.call('GET', KEYS[i]) or '0') end
    local startedAt = tonumber(redis.call('HGET', state, 'startedAt') or tostring(now))
    -- a second that start-up or a 429 pause fell into counts too few
    local paused = redis.call('HGET', state, 'pausedAt')
    local saturated = now - boundAt < 1000 and now - startedAt >= 2000 and now - tonumber(paused or '0') >= 2000
    if saturated and measured > 0 then
      ceiling = math.min(rate, measured)
      rate = math.max(minRate, ceiling * 0.97)
      reason = 'ByByBG answered 429: the last second\\'s successes are the limit'
    else
      ceiling = rate
      rate = math.max(minRate, rate * 0.9)
      reason = 'ByByBG answered 429'
    end
    phase = 'steady'
    aboveAt = 0
  end
  lastDecrease = now
end
${SAVE_STATE}
${RETURN_STATE}`;

/**
 * ByByBG reported no allowance left: the limit is close, so probing stops and the rate
 * creeps from here. A small burst allowance runs dry now and then even below the limit,
 * so this is no reason to slow down.
 */
const AT_LIMIT = `${READ_STATE}
if mode == 'discovering' and phase == 'probe' then
  phase = 'steady'
  ceiling = rate
  reason = 'ByByBG reports its allowance used up'
end
${SAVE_STATE}
${RETURN_STATE}`;

export function makeRateGovernor({
  redis,
  prefix,
  settings = {},
  now = Date.now,
  wait = sleep,
}: {
  redis: Redis;
  prefix: string;
  settings?: GovernorSettings;
  now?: () => number;
  /** How `acquire` waits for its slot; a fake clock's advance in tests. */
  wait?: (ms: number) => Promise<unknown>;
}): RateGovernor {
  const keys = upstreamKeys(prefix);
  const fixed = settings.configuredPerSecond !== undefined;
  // Told the limit, the calls are paced a little under it: with starts spaced exactly at the
  // limit, a bucket with a small burst has no slack for network jitter and meets 429s.
  const maxRate =
    settings.configuredPerSecond !== undefined
      ? settings.configuredPerSecond * CONFIGURED_SHARE
      : (settings.maxPerSecond ?? 1_000);
  const initial = fixed ? maxRate : Math.min(maxRate, settings.initialPerSecond ?? 5);
  const defaults = [
    String(initial),
    fixed ? 'fixed' : 'discovering',
    fixed ? 'steady' : 'probe',
    String(maxRate),
    String(settings.minPerSecond ?? 0.2),
  ];
  let state: RateState = { ratePerSecond: initial, mode: fixed ? 'fixed' : 'discovering', reason: 'starting' };
  let started = false;

  const read = ([rate, mode, reason]: string[]): RateState => {
    state = { ratePerSecond: Number(rate), mode: mode === 'fixed' ? 'fixed' : 'discovering', reason: reason ?? '' };
    return state;
  };
  const run = async (script: string, extraKeys: string[] = [], extraArgs: string[] = []) =>
    read(
      (await redis.eval(
        script,
        1 + extraKeys.length,
        keys.governor,
        ...extraKeys,
        String(now()),
        ...defaults,
        ...extraArgs,
      )) as string[],
    );

  return {
    current: () => state,
    async acquire() {
      if (!started) {
        started = true;
        // When calls started: a count of successes that includes start-up is no estimate of the limit.
        await redis.hsetnx(keys.governor, 'startedAt', String(now()));
      }
      for (;;) {
        const [waitMs, granted, ...rest] = (await redis.eval(
          ACQUIRE,
          2,
          keys.governor,
          keys.rateLimitPause,
          String(now()),
          ...defaults,
          String(HORIZON_MS),
        )) as string[];
        read(rest);
        const ms = Number(waitMs);
        if (ms > 0) await wait(ms);
        if (granted === '1') return;
      }
    },
    async recordSuccess() {
      await run(SUCCESS, [keys.successes(Math.floor(now() / BUCKET_MS))]);
    },
    async recordRateLimited() {
      const bucket = Math.floor(now() / BUCKET_MS);
      return run(
        RATE_LIMITED,
        Array.from({ length: 10 }, (_, i) => keys.successes(bucket - 1 - i)),
      );
    },
    async recordAtLimit() {
      await run(AT_LIMIT);
    },
    tick: () => run(TICK),
  };
}

/**
 * BullMQ's limiter as jobs per window: a safety net at twice the governor's rate (the
 * shared pacer spaces the calls themselves), in short windows so job starts stay even.
 */
export function limiterFor(ratePerSecond: number): { max: number; duration: number } {
  const perSecond = ratePerSecond * 2;
  const max = Math.max(1, Math.round(perSecond / 100));
  return { max, duration: Math.max(1, Math.round((1000 * max) / perSecond)) };
}
