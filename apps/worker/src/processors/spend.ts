import { RateLimitError, UnrecoverableError, type Job } from 'bullmq';
import { formatDuration, type Logger, type RemoveBgPayload } from '@cutout/shared/infra';
import type {
  BudgetPeriodName,
  Budgets,
  CallReservation,
  HoldProblem,
  JobRecord,
  UpstreamState,
} from '@cutout/shared/stores';
import type { CallSpend } from '../bybybg/client.ts';
import { budgetLot, CREDIT_LOT, type ParkingLots } from '../spend/parking.ts';
import { failJob, type AnnounceDeps } from './job-endings.ts';

/**
 * What must be true before a job may call ByByBG, besides the rate: the account has credit,
 * and the tenant's budget has room. Neither wait uses an attempt.
 */

/** The tenant's budget of upstream calls is used up until `resetsAt` (ms). */
export class BudgetExhaustedError extends Error {
  override readonly name = 'BudgetExhaustedError';
  readonly code = 'budget_exhausted';
  readonly exhausted: readonly BudgetPeriodName[];
  readonly resetsAt: number;
  constructor(exhausted: readonly BudgetPeriodName[], resetsAt: number) {
    super(`The tenant's ${exhausted.join(' and ')} budget of upstream calls is used up`);
    this.exhausted = exhausted;
    this.resetsAt = resetsAt;
  }
}

/**
 * A job's account of its calls: each is reserved in the budget before it is made; one that
 * was reserved but never sent is given back by `release`. At most one is held unsent, so
 * the processor can reserve before the job starts and the client's first request uses it.
 */
export function makeCallLedger(budgets: Pick<Budgets, 'reserve' | 'refund'>, tenantId: string): CallSpend {
  let held: CallReservation | undefined;
  return {
    async reserve() {
      if (held) return;
      const result = await budgets.reserve(tenantId);
      if (!result.ok) throw new BudgetExhaustedError(result.exhausted, result.resetsAt);
      held = result.reservation;
    },
    sent() {
      held = undefined;
    },
    async release() {
      const reservation = held;
      held = undefined;
      if (reservation) await budgets.refund(reservation);
    },
  };
}

export type CreditDecision =
  | { kind: 'call' }
  /** The queue is held: back to waiting, the job's place kept. */
  | { kind: 'hold' }
  /** The hold outlived its budget and stopped holding the queue: this job waits out the rest of its own. */
  | { kind: 'park'; until: number }
  | { kind: 'fail'; message: string };

/**
 * While the account is out of credit no call is made. A job may wait `budgetMs`, counted
 * from when the hold began or, for a job submitted later, from its submission.
 */
export function creditDecision(
  hold: HoldProblem | null,
  createdAt: string,
  budgetMs: number,
  now: number,
): CreditDecision {
  if (!hold) return { kind: 'call' };
  const since = Date.parse(hold.since);
  const deadline = Math.max(since, Date.parse(createdAt)) + budgetMs;
  if (now >= deadline)
    return {
      kind: 'fail',
      message: `ByByBG answered 402 (out of credit) and no credit came back within ${formatDuration(budgetMs)}`,
    };
  if (now - since < budgetMs) return { kind: 'hold' };
  return { kind: 'park', until: deadline };
}

export interface SpendDeps extends AnnounceDeps {
  upstream: Pick<UpstreamState, 'hold'>;
  parking: ParkingLots;
  /** How long a job may wait for credit before it fails with upstream_out_of_credit. */
  outOfCreditBudgetMs: number;
}

/** Checks the credit hold before a call; returns normally when the job may call, otherwise throws BullMQ's answer. */
export async function awaitCredit(
  deps: SpendDeps,
  job: Job<RemoveBgPayload>,
  token: string | undefined,
  record: JobRecord,
  log: Logger,
): Promise<void> {
  const decision = creditDecision(
    await deps.upstream.hold('upstream_out_of_credit'),
    record.createdAt,
    deps.outOfCreditBudgetMs,
    Date.now(),
  );
  if (decision.kind === 'call') return;
  if (decision.kind === 'fail') {
    await failJob(
      deps,
      record.id,
      { code: 'upstream_out_of_credit', message: decision.message, retryable: true },
      job.attemptsMade,
    );
    log.error({ code: 'upstream_out_of_credit' }, 'job failed: no credit came back in time');
    throw new UnrecoverableError(decision.message);
  }
  await deps.jobs.transition(record.id, ['queued', 'processing'], {
    status: 'queued',
    waitingReason: 'upstream_out_of_credit',
  });
  if (decision.kind === 'hold') throw new RateLimitError();
  return deps.parking.park(job, token, CREDIT_LOT, decision.until);
}

/** The budget refused a call: the job waits, out of everyone's way, until the budget resets or is raised. */
export async function parkForBudget(
  deps: SpendDeps,
  job: Job<RemoveBgPayload>,
  token: string | undefined,
  record: JobRecord,
  error: BudgetExhaustedError,
  log: Logger,
): Promise<never> {
  await deps.jobs.transition(record.id, ['queued', 'processing'], {
    status: 'queued',
    waitingReason: 'budget_exhausted',
  });
  log.debug(
    { exhausted: error.exhausted, resetsAt: new Date(error.resetsAt).toISOString() },
    'budget used up; job parked',
  );
  return deps.parking.park(job, token, budgetLot(record.tenantId), error.resetsAt);
}
