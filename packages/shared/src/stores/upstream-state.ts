import type { Redis } from 'ioredis';

/**
 * Why the workers hold the whole queue: ByByBG refuses every configured key (401), or the
 * account is out of credit (402). Either is the account's problem, never one job's.
 */
export type HoldReason = 'upstream_unauthorized' | 'upstream_out_of_credit';
export const HOLD_REASONS: readonly HoldReason[] = ['upstream_unauthorized', 'upstream_out_of_credit'];

/** A hold, shared by every worker and read by the API. */
export interface HoldProblem {
  since: string;
  message: string;
}
export type Holds = Partial<Record<HoldReason, HoldProblem>>;

export interface RateState {
  /** Requests per second the workers currently allow themselves. */
  ratePerSecond: number;
  /** `fixed` when BYBYBG_RATE_LIMIT is set, `discovering` while the limit is found from 429s. */
  mode: 'fixed' | 'discovering';
  reason: string;
}

export interface UpstreamState {
  /** Every hold in force, read in one round trip. */
  holds(): Promise<Holds>;
  hold(reason: HoldReason): Promise<HoldProblem | null>;
  /** Records a hold; an earlier one of the same reason keeps its `since`. True when this call started it. */
  setHold(reason: HoldReason, problem: HoldProblem): Promise<boolean>;
  /** True when this call ended the hold. */
  clearHold(reason: HoldReason): Promise<boolean>;
  rate(): Promise<RateState | null>;
  /** Milliseconds left of the queue-wide pause after a 429, 0 when none. */
  pauseRemainingMs(): Promise<number>;
  notePause(ms: number): Promise<void>;
}

export const upstreamKeys = (prefix: string) => ({
  holds: {
    upstream_unauthorized: `${prefix}:upstream:key-problem`,
    upstream_out_of_credit: `${prefix}:upstream:credit-problem`,
  } satisfies Record<HoldReason, string>,
  governor: `${prefix}:upstream:governor`,
  probeLock: `${prefix}:upstream:probe-lock`,
  /** Successful upstream calls in one 100 ms bucket (the governor sums the last second). */
  successes: (bucket: number) => `${prefix}:upstream:ok:${bucket}`,
  /** Exists while the queue is paused after a 429; its TTL is the pause left. */
  rateLimitPause: `${prefix}:upstream:rate-limit-pause`,
});

const parse = (stored: string | null): HoldProblem | null => (stored ? (JSON.parse(stored) as HoldProblem) : null);

export function makeUpstreamState({ redis, prefix }: { redis: Redis; prefix: string }): UpstreamState {
  const keys = upstreamKeys(prefix);
  return {
    async holds() {
      const stored = await redis.mget(...HOLD_REASONS.map((reason) => keys.holds[reason]));
      const holds: Holds = {};
      HOLD_REASONS.forEach((reason, i) => {
        const problem = parse(stored[i] ?? null);
        if (problem) holds[reason] = problem;
      });
      return holds;
    },
    async hold(reason) {
      return parse(await redis.get(keys.holds[reason]));
    },
    async setHold(reason, problem) {
      return (await redis.set(keys.holds[reason], JSON.stringify(problem), 'NX')) === 'OK';
    },
    async clearHold(reason) {
      return (await redis.del(keys.holds[reason])) > 0;
    },
    async rate() {
      const [rate, mode, reason] = await redis.hmget(keys.governor, 'rate', 'mode', 'reason');
      if (!rate) return null;
      return { ratePerSecond: Number(rate), mode: mode === 'fixed' ? 'fixed' : 'discovering', reason: reason ?? '' };
    },
    async pauseRemainingMs() {
      return Math.max(0, await redis.pttl(keys.rateLimitPause));
    },
    async notePause(ms) {
      await redis.set(keys.rateLimitPause, '1', 'PX', Math.max(1, Math.round(ms)));
    },
  };
}
