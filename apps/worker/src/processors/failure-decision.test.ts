import { describe, expect, it } from 'vitest';
import { ImageInputError } from '@cutout/shared/images';
import { UpstreamError, type UpstreamErrorCode, type UpstreamErrorKind } from '../bybybg/errors.ts';
import { decide, type FailedAttempt, type FailureAction } from './failure-decision.ts';
import { BudgetExhaustedError } from './spend.ts';

const NOW = Date.parse('2026-12-01T12:00:00.000Z');
const MINUTE = 60_000;
const upstream = (kind: UpstreamErrorKind, code: UpstreamErrorCode, message = `ByByBG said ${code}`) =>
  new UpstreamError({ kind, code, message });
const missingObject = Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' });
const budget = new BudgetExhaustedError(['daily'], NOW + MINUTE);

/** One row per way an attempt can fail; `attempt` counts from 1 (of `of`). */
const rows: {
  case: string;
  error: unknown;
  attempt?: number;
  of?: number;
  limitedSince?: string;
  mode?: 'fixed' | 'discovering';
  canDelay?: boolean;
  expected: FailureAction;
}[] = [
  { case: 'budget used up', error: budget, expected: { kind: 'park_for_budget', error: budget } },
  {
    case: 'first 429',
    error: upstream('rate_limited', 'upstream_rate_limited'),
    expected: { kind: 'wait_for_rate_limit', rateLimitedSince: new Date(NOW).toISOString() },
  },
  {
    case: '429 within the rate-limit budget keeps its start',
    error: upstream('rate_limited', 'upstream_rate_limited'),
    limitedSince: new Date(NOW - 4 * MINUTE).toISOString(),
    expected: { kind: 'wait_for_rate_limit', rateLimitedSince: new Date(NOW - 4 * MINUTE).toISOString() },
  },
  {
    case: '429 past the rate-limit budget',
    error: upstream('rate_limited', 'upstream_rate_limited'),
    limitedSince: new Date(NOW - 6 * MINUTE).toISOString(),
    expected: {
      kind: 'fail',
      error: {
        code: 'upstream_rate_limited',
        message: 'ByByBG kept answering 429 for longer than 300 s',
        retryable: true,
      },
    },
  },
  {
    case: '429 while discovering the limit delays only the job, by Retry-After',
    error: new UpstreamError({
      kind: 'rate_limited',
      code: 'upstream_rate_limited',
      message: '429',
      retryAfterMs: 2_000,
    }),
    mode: 'discovering',
    expected: { kind: 'delay_for_rate_limit', delayMs: 2_000, rateLimitedSince: new Date(NOW).toISOString() },
  },
  {
    case: '429 while discovering, no Retry-After: a second',
    error: upstream('rate_limited', 'upstream_rate_limited'),
    mode: 'discovering',
    expected: { kind: 'delay_for_rate_limit', delayMs: 1_000, rateLimitedSince: new Date(NOW).toISOString() },
  },
  {
    case: '429 while discovering, the job not movable on its own: the queue waits',
    error: upstream('rate_limited', 'upstream_rate_limited'),
    mode: 'discovering',
    canDelay: false,
    expected: { kind: 'wait_for_rate_limit', rateLimitedSince: new Date(NOW).toISOString() },
  },
  {
    case: '429 under BYBYBG_RATE_LIMIT with a short Retry-After delays only the job',
    error: new UpstreamError({
      kind: 'rate_limited',
      code: 'upstream_rate_limited',
      message: '429',
      retryAfterMs: 1_000,
    }),
    mode: 'fixed',
    expected: { kind: 'delay_for_rate_limit', delayMs: 1_000, rateLimitedSince: new Date(NOW).toISOString() },
  },
  {
    case: '429 under BYBYBG_RATE_LIMIT with a long Retry-After (a quota window) pauses the queue',
    error: new UpstreamError({
      kind: 'rate_limited',
      code: 'upstream_rate_limited',
      message: '429',
      retryAfterMs: 30_000,
    }),
    mode: 'fixed',
    expected: { kind: 'wait_for_rate_limit', rateLimitedSince: new Date(NOW).toISOString() },
  },
  {
    case: '429 with the governor mode unknown pauses the queue',
    error: upstream('rate_limited', 'upstream_rate_limited'),
    expected: { kind: 'wait_for_rate_limit', rateLimitedSince: new Date(NOW).toISOString() },
  },
  {
    case: '429 past the rate-limit budget fails while discovering too',
    error: upstream('rate_limited', 'upstream_rate_limited'),
    mode: 'discovering',
    limitedSince: new Date(NOW - 6 * MINUTE).toISOString(),
    expected: {
      kind: 'fail',
      error: {
        code: 'upstream_rate_limited',
        message: 'ByByBG kept answering 429 for longer than 300 s',
        retryable: true,
      },
    },
  },
  {
    case: '429 on the last attempt uses none',
    error: upstream('rate_limited', 'upstream_rate_limited'),
    attempt: 3,
    of: 3,
    expected: { kind: 'wait_for_rate_limit', rateLimitedSince: new Date(NOW).toISOString() },
  },
  {
    case: 'every key refused',
    error: upstream('unauthorized', 'upstream_unauthorized', 'every key was refused'),
    expected: { kind: 'hold_queue', reason: 'upstream_unauthorized', message: 'every key was refused' },
  },
  {
    case: 'out of credit',
    error: upstream('out_of_credit', 'upstream_out_of_credit', 'no credits left'),
    expected: { kind: 'hold_queue', reason: 'upstream_out_of_credit', message: 'no credits left' },
  },
  {
    case: 'ByByBG unavailable, tries left',
    error: upstream('transient', 'upstream_unavailable'),
    attempt: 1,
    of: 3,
    expected: {
      kind: 'retry',
      error: { code: 'upstream_unavailable', message: 'ByByBG said upstream_unavailable', retryable: true },
    },
  },
  {
    case: 'ByByBG unavailable, last attempt',
    error: upstream('transient', 'upstream_unavailable'),
    attempt: 3,
    of: 3,
    expected: {
      kind: 'fail',
      error: { code: 'upstream_unavailable', message: 'ByByBG said upstream_unavailable', retryable: true },
    },
  },
  {
    case: 'ByByBG rejects the image',
    error: upstream('permanent', 'upstream_rejected'),
    attempt: 1,
    of: 3,
    expected: {
      kind: 'fail',
      error: { code: 'upstream_rejected', message: 'ByByBG said upstream_rejected', retryable: false },
    },
  },
  {
    case: 'image URL unreachable for now, tries left',
    error: new ImageInputError(502, 'image_url_unreachable', 'the image server answered 503', true),
    attempt: 1,
    of: 3,
    expected: {
      kind: 'retry',
      error: { code: 'image_url_unreachable', message: 'the image server answered 503', retryable: true },
    },
  },
  {
    case: 'image URL is not an image',
    error: new ImageInputError(422, 'invalid_image', 'not an image', false),
    attempt: 1,
    of: 3,
    expected: { kind: 'fail', error: { code: 'invalid_image', message: 'not an image', retryable: false } },
  },
  {
    case: 'original gone from storage',
    error: missingObject,
    attempt: 1,
    of: 3,
    expected: {
      kind: 'fail',
      error: { code: 'original_missing', message: 'The original image is no longer in storage', retryable: false },
    },
  },
  {
    case: 'anything else, tries left',
    error: new Error('socket hang up'),
    attempt: 2,
    of: 3,
    expected: {
      kind: 'retry',
      error: {
        code: 'processing_error',
        message: 'The job could not be processed; it was retried and gave up',
        retryable: true,
      },
    },
  },
  {
    case: 'anything else, one attempt allowed',
    error: new Error('socket hang up'),
    attempt: 1,
    of: 1,
    expected: {
      kind: 'fail',
      error: {
        code: 'processing_error',
        message: 'The job could not be processed; it was retried and gave up',
        retryable: true,
      },
    },
  },
];

describe('decide: what a failed remove-bg attempt leads to', () => {
  it.each(rows)('$case', ({ error, attempt = 1, of = 3, limitedSince, mode, canDelay = true, expected }) => {
    const failed: FailedAttempt = {
      error,
      attemptsMade: attempt - 1,
      maxAttempts: of,
      rateLimitedSince: limitedSince,
      rateLimitBudgetMs: 5 * MINUTE,
      now: NOW,
      rateMode: mode,
      canDelayJob: canDelay,
    };
    expect(decide(failed)).toEqual(expected);
  });
});
