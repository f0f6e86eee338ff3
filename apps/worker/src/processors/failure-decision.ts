import type { HoldReason, JobError } from '@cutout/shared/stores';
import { UpstreamError, type UpstreamErrorKind } from '../bybybg/errors.ts';
import { toJobError } from './job-endings.ts';
import { BudgetExhaustedError } from './spend.ts';

/** What a failed attempt of a remove-bg job leads to; the processor carries it out. */
export type FailureAction =
  /** The tenant's budget refused a call: the job waits, parked, for the budget's next period. */
  | { kind: 'park_for_budget'; error: BudgetExhaustedError }
  /** ByByBG answered 429 while the limit is being discovered: only this job waits out Retry-After; no attempt used. */
  | { kind: 'delay_for_rate_limit'; delayMs: number; rateLimitedSince: string }
  /** ByByBG answered 429: the queue pauses for every worker; the job is queued again, no attempt used. */
  | { kind: 'wait_for_rate_limit'; rateLimitedSince: string }
  /** The account cannot work (every key refused, no credit): the queue is held; no attempt used. */
  | { kind: 'hold_queue'; reason: HoldReason; message: string }
  /** Worth another try, and tries are left: queued again with the attempt counted. */
  | { kind: 'retry'; error: JobError }
  /** The job ends as failed. */
  | { kind: 'fail'; error: JobError };

export interface FailedAttempt {
  error: unknown;
  /** Attempts made before this one (BullMQ's attemptsMade). */
  attemptsMade: number;
  /** Attempts the job may make in all. */
  maxAttempts: number;
  /** When ByByBG first answered 429 for this job, if it has. */
  rateLimitedSince?: string;
  /** How long a job may wait on 429s before it fails with upstream_rate_limited. */
  rateLimitBudgetMs: number;
  now: number;
  /** The governor's mode once it has counted this 429: discovering or told the limit (BYBYBG_RATE_LIMIT). */
  rateMode?: 'fixed' | 'discovering';
  /** Whether the job can be moved to delayed on its own (the processor holds its lock token). */
  canDelayJob: boolean;
}

/** A Retry-After up to this is a token bucket refilling, not a quota window closing. */
const SHORT_REFILL_MS = 1_000;

/** Upstream outcomes that hold the whole queue, and the hold each starts. */
const QUEUE_HOLDS: Partial<Record<UpstreamErrorKind, HoldReason>> = {
  unauthorized: 'upstream_unauthorized',
  out_of_credit: 'upstream_out_of_credit',
};

/** Decides what a failed attempt leads to, from the error and the job's history alone. */
export function decide({
  error,
  attemptsMade,
  maxAttempts,
  rateLimitedSince,
  rateLimitBudgetMs,
  now,
  rateMode,
  canDelayJob,
}: FailedAttempt): FailureAction {
  // A later call of the job (the next key after a 401) that the budget refused.
  if (error instanceof BudgetExhaustedError) return { kind: 'park_for_budget', error };
  if (error instanceof UpstreamError && error.kind === 'rate_limited') {
    const since = rateLimitedSince ?? new Date(now).toISOString();
    if (now - Date.parse(since) > rateLimitBudgetMs) {
      const message = `ByByBG kept answering 429 for longer than ${Math.round(rateLimitBudgetMs / 1000)} s`;
      return { kind: 'fail', error: { code: 'upstream_rate_limited', message, retryable: true } };
    }
    // The governor has already slowed every worker's pacer, so one job waiting out Retry-After is
    // enough: while it discovers the limit, always; told the limit, when the refill is short (a token
    // bucket running dry for a moment). A long Retry-After (a window's quota used up) stops everyone.
    const delayMs = error.retryAfterMs ?? 1_000;
    const jobOnly = rateMode === 'discovering' || (rateMode === 'fixed' && delayMs <= SHORT_REFILL_MS);
    if (jobOnly && canDelayJob) return { kind: 'delay_for_rate_limit', delayMs, rateLimitedSince: since };
    return { kind: 'wait_for_rate_limit', rateLimitedSince: since };
  }
  const hold = error instanceof UpstreamError ? QUEUE_HOLDS[error.kind] : undefined;
  if (hold && error instanceof UpstreamError) return { kind: 'hold_queue', reason: hold, message: error.message };
  const jobError = toJobError(error);
  const final = !jobError.retryable || attemptsMade + 1 >= maxAttempts;
  return final ? { kind: 'fail', error: jobError } : { kind: 'retry', error: jobError };
}
