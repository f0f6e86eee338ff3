import type { Redis } from 'ioredis';
import { upstreamKeys, type RateState } from '@cutout/shared/stores';

/**
 * Finds and holds the upstream request rate for all worker processes together, in
 * Redis: additive increase while calls succeed and the limit is what holds the workers
 * back, multiplicative decrease on a 429. Nothing but the 429 itself is relied on,
 * since ByByBG documents no more.
 */
export interface RateGovernor {
  /** The rate this process should apply now (refreshed by `tick`). */
  current(): RateState;
  recordSuccess(): Promise<void>;
  recordRateLimited(): Promise<void>;
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

/** Shared by both scripts: state hash, then the success counters of the last two whole seconds. */
const READ_STATE = `
local state = KEYS[1]
local now = tonumber(ARGV[1])
local maxRate = tonumber(ARGV[5])
local minRate = tonumber(ARGV[6])
-- the configured ceiling wins over what an earlier configuration stored
local rate = math.min(maxRate, tonumber(redis.call('HGET', state, 'rate') or ARGV[2]))
local mode = ARGV[3]
local phase = redis.call('HGET', state, 'phase') or ARGV[4]
local ceiling = tonumber(redis.call('HGET', state, 'ceiling') or '0')
local lastIncrease = tonumber(redis.call('HGET', state, 'lastIncreaseAt') or '0')
local lastDecrease = tonumber(redis.call('HGET', state, 'lastDecreaseAt') or '0')
local measured = (tonumber(redis.call('GET', KEYS[2]) or '0') + tonumber(redis.call('GET', KEYS[3]) or '0')) / 2
`;

const SAVE_STATE = `
redis.call('HSET', state, 'rate', tostring(rate), 'mode', mode, 'phase', phase, 'ceiling', tostring(ceiling),
  'lastIncreaseAt', tostring(lastIncrease), 'lastDecreaseAt', tostring(lastDecrease), 'reason', reason)
return {tostring(rate), mode, reason}
`;

/**
 * Once a second at most, and not within 2 s of a 429: in the probe phase ×1.5; then +2 %
 * a second, slowing to +0.1 % within ±5 % of the rate of the last 429: each 429 costs a
 * pause of a second or more, so the edge is approached slowly and met rarely (past it, the
 * 429 was a fluke: growing faster again).
 * The rate only grows while the workers use ≥ 80 % of it, so idle time never inflates it.
 */
const TICK = `${READ_STATE}
local reason = redis.call('HGET', state, 'reason') or 'starting'
if now - lastIncrease >= 1000 and now - lastDecrease >= 2000 then
  lastIncrease = now
  if measured >= rate * 0.8 then
    if phase == 'probe' then
      rate = math.min(maxRate, rate * 1.5)
      reason = 'probing: no 429 yet'
    elseif ceiling > 0 and rate >= ceiling * 0.95 and rate <= ceiling * 1.05 then
      rate = math.min(maxRate, rate + math.max(0.02, rate * 0.001))
      reason = 'near the rate of the last 429'
    else
      rate = math.min(maxRate, rate + math.max(0.2, rate * 0.02))
      reason = 'growing towards the limit'
    end
    if rate >= maxRate and mode == 'fixed' then reason = 'at BYBYBG_RATE_LIMIT' end
  end
end
${SAVE_STATE}`;

/**
 * One decrease per 429 episode (1 s) to 90 % of the rate. Only when far more was allowed
 * than got through, and no pause in the last 3 s depressed what got through, is the cut
 * made from the measured rate instead. Never below the floor.
 */
const RATE_LIMITED = `${READ_STATE}
local reason = redis.call('HGET', state, 'reason') or 'starting'
if now - lastDecrease >= 1000 then
  local base = rate
  if measured > 0 and measured < rate * 0.5 and now - lastDecrease > 3000 then base = measured end
  ceiling = base
  rate = math.max(minRate, base * 0.9)
  phase = 'steady'
  lastDecrease = now
  reason = 'ByByBG answered 429'
end
${SAVE_STATE}`;

/**
 * ByByBG reported no allowance left: the limit is close, so growth turns from ×1.5 to
 * gentle steps. A small burst allowance runs dry now and then even below the limit, so
 * this is no reason to slow down.
 */
const AT_LIMIT = `${READ_STATE}
local reason = redis.call('HGET', state, 'reason') or 'starting'
if phase == 'probe' then phase = 'steady'; reason = 'ByByBG reports its allowance used up' end
${SAVE_STATE}`;

export function makeRateGovernor({ redis, prefix, settings = {}, now = Date.now }: { redis: Redis; prefix: string; settings?: GovernorSettings; now?: () => number }): RateGovernor {
  const keys = upstreamKeys(prefix);
  const fixed = settings.configuredPerSecond !== undefined;
  const maxRate = settings.configuredPerSecond ?? settings.maxPerSecond ?? 1_000;
  const initial = fixed ? maxRate : Math.min(maxRate, settings.initialPerSecond ?? 5);
  const defaults = [String(initial), fixed ? 'fixed' : 'discovering', fixed ? 'steady' : 'probe', String(maxRate), String(settings.minPerSecond ?? 0.2)];
  let state: RateState = { ratePerSecond: initial, mode: fixed ? 'fixed' : 'discovering', reason: 'starting' };

  async function run(script: string): Promise<RateState> {
    const second = Math.floor(now() / 1000);
    const [rate, mode, reason] = (await redis.eval(script, 3, keys.governor, keys.successes(second - 1), keys.successes(second - 2), String(now()), ...defaults)) as string[];
    state = { ratePerSecond: Number(rate), mode: mode === 'fixed' ? 'fixed' : 'discovering', reason: reason ?? '' };
    return state;
  }

  return {
    current: () => state,
    async recordSuccess() {
      const key = keys.successes(Math.floor(now() / 1000));
      await redis.multi().incr(key).pexpire(key, 10_000).exec();
    },
    async recordRateLimited() {
      await run(RATE_LIMITED);
    },
    async recordAtLimit() {
      await run(AT_LIMIT);
    },
    tick: () => run(TICK),
  };
}

/**
 * BullMQ's limiter as jobs per window: short windows keep the starts even, so a small
 * upstream burst allowance is not overrun at the start of every second.
 */
export function limiterFor(ratePerSecond: number): { max: number; duration: number } {
  // One start per window up to 100/s: a burst allowance of a few calls is never overrun
  // (at R = 50 with a burst of 5, windows of 5 per 100 ms met 429s; 1 per 20 ms none).
  const max = Math.max(1, Math.round(ratePerSecond / 100));
  return { max, duration: Math.max(1, Math.round((1000 * max) / ratePerSecond)) };
}
