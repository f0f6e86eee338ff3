import type { Redis } from 'ioredis';

/** Why the workers hold jobs back, shared by every worker and read by the API. */
export interface KeyProblem { since: string; message: string }

export interface RateState {
  /** Requests per second the workers currently allow themselves. */
  ratePerSecond: number;
  /** `fixed` when BYBYBG_RATE_LIMIT is set, `discovering` while the limit is found from 429s. */
  mode: 'fixed' | 'discovering';
  reason: string;
}

export interface UpstreamState {
  keyProblem(): Promise<KeyProblem | null>;
  setKeyProblem(problem: KeyProblem): Promise<void>;
  clearKeyProblem(): Promise<boolean>;
  rate(): Promise<RateState | null>;
  /** Milliseconds left of the queue-wide pause after a 429, 0 when none. */
  pauseRemainingMs(): Promise<number>;
  notePause(ms: number): Promise<void>;
}

export const upstreamKeys = (prefix: string) => ({
  keyProblem: `${prefix}:upstream:key-problem`,
  governor: `${prefix}:upstream:governor`,
  probeLock: `${prefix}:upstream:probe-lock`,
  successes: (second: number) => `${prefix}:upstream:ok:${second}`,
  /** Exists while the queue is paused after a 429; its TTL is the pause left. */
  rateLimitPause: `${prefix}:upstream:rate-limit-pause`,
});

export function makeUpstreamState({ redis, prefix }: { redis: Redis; prefix: string }): UpstreamState {
  const keys = upstreamKeys(prefix);
  return {
    async keyProblem() {
      const stored = await redis.get(keys.keyProblem);
      return stored ? (JSON.parse(stored) as KeyProblem) : null;
    },
    async setKeyProblem(problem) {
      await redis.set(keys.keyProblem, JSON.stringify(problem), 'NX');
    },
    async clearKeyProblem() {
      return (await redis.del(keys.keyProblem)) > 0;
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
