import type { HoldProblem, HoldReason } from '@cutout/shared/stores';
import type { ProbeOutcome } from '../bybybg/client.ts';
import { classifyStatus } from '../bybybg/errors.ts';

/** How a hold is probed and how long it may hold the queue. */
export interface HoldPolicy {
  /** At most one probe request per this interval, across every worker. */
  probeIntervalMs: number;
  /** After this long the hold stops holding the queue; unset: until it ends. */
  budgetMs?: number;
}

/**
 * Whether a probe's answer shows the cause of a hold is gone. A key is fine once ByByBG
 * answers it with anything but 401. Credit is back once an answer is neither 402 nor one that
 * says nothing about credit: a rate limit or a server failure may come before the credit check.
 */
export function probeClears(reason: HoldReason, outcome: ProbeOutcome): boolean {
  if (outcome.kind !== 'answered') return false;
  if (reason === 'upstream_unauthorized') return true;
  const classification = classifyStatus(outcome.status);
  return classification === null || classification.kind === 'permanent';
}

/** The hold a probe's answer shows is needed: it found every key refused, or no credit. */
export function probeRaises(outcome: ProbeOutcome): HoldReason | null {
  if (outcome.kind === 'unauthorized') return 'upstream_unauthorized';
  if (outcome.kind === 'answered' && classifyStatus(outcome.status)?.kind === 'out_of_credit')
    return 'upstream_out_of_credit';
  return null;
}

export const holdExpired = (problem: HoldProblem, policy: HoldPolicy, now: number): boolean =>
  policy.budgetMs !== undefined && now - Date.parse(problem.since) >= policy.budgetMs;
