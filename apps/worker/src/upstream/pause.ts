import type { Queue } from 'bullmq';
import type { UpstreamState } from '@cutout/shared/stores';
import type { UpstreamError } from '../bybybg/errors.ts';

const FIRST_PAUSE_MS = 1_000;
const MAX_PAUSE_MS = 60_000;

export interface UpstreamPause {
  /** Pauses the queue for every worker process after a 429; returns the pause in ms. */
  pauseFor(error: UpstreamError): Promise<number>;
  /** ByByBG said its window is used up (`X-RateLimit-Remaining: 0`): wait for the reset. */
  holdFor(ms: number): Promise<void>;
  /** A successful call ends a run of 429s, so the next pause starts small again. */
  succeeded(): void;
}

/**
 * Exponential pause with jitter across consecutive 429s (1 s, 2 s, 4 s … 60 s), never
 * shorter than the upstream's Retry-After. `queue.rateLimit` stores the pause in Redis,
 * so every worker process stops fetching jobs until it expires.
 *
 * Requests already in flight when a pause starts come back 429 too; they belong to the
 * same episode and must not double the pause again.
 */
export function makeUpstreamPause({
  queue,
  upstream,
  onPause,
  random = Math.random,
  now = Date.now,
}: {
  queue: Queue;
  upstream: Pick<UpstreamState, 'notePause'>;
  random?: () => number;
  now?: () => number;
  /** Each time this process starts a pause (`started`) or lengthens one, with the time it adds (metrics). */
  onPause?: (addedMs: number, started: boolean) => void;
}): UpstreamPause {
  let consecutive = 0;
  let pausedUntil = 0;

  async function extendTo(at: number, delayMs: number): Promise<void> {
    if (at + delayMs <= pausedUntil) return;
    const started = at >= pausedUntil;
    onPause?.(at + delayMs - Math.max(at, pausedUntil), started);
    pausedUntil = at + delayMs;
    await Promise.all([queue.rateLimit(delayMs), upstream.notePause(delayMs)]);
  }

  return {
    async pauseFor(error) {
      const at = now();
      let delayMs: number;
      if (at < pausedUntil) {
        delayMs = Math.max(pausedUntil - at, error.retryAfterMs ?? 0);
      } else {
        consecutive += 1;
        const exponential = Math.min(MAX_PAUSE_MS, FIRST_PAUSE_MS * 2 ** (consecutive - 1));
        delayMs = Math.round(Math.max(exponential * (0.75 + random() * 0.5), error.retryAfterMs ?? 0));
      }
      await extendTo(at, delayMs);
      return delayMs;
    },
    async holdFor(ms) {
      await extendTo(now(), Math.min(ms, MAX_PAUSE_MS));
    },
    succeeded() {
      consecutive = 0;
    },
  };
}
