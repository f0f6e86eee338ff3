import { dedupKey, fingerprintOf, type BudgetPeriod } from '@cutout/shared/stores';
import type { AppDeps } from '../deps.ts';
import { queueHold } from '../jobs/hold.ts';
import type { DryRunTally } from './batch-sink.ts';
import type { RejectedRow } from './items.ts';

/**
 * `POST /v1/batches` with `dry_run`: what the batch would cost, from a request validated
 * exactly as a real one (files included, hashed as they streamed and stored nowhere). It
 * reads Redis and writes nothing: no object, no job, no batch, no usage, no ByByBG call.
 */
export interface BatchEstimate {
  object: 'batch_estimate';
  items: number;
  rejected: RejectedRow[];
  /** Images whose result will be reused: repeats within the batch, and earlier results of the same image and options. */
  duplicates: number;
  /** ByByBG calls the batch will make: exact for files, one per URL or direct-upload item (an upper bound). */
  upstream_calls: number;
  upstream_calls_exact: boolean;
  /** URL and direct-upload items are read by the workers, so their duplicates are not known before. */
  url_items: number;
  note: string | null;
  /** Each budgeted period after the batch: `remaining` below 0 means that many calls would wait for the budget. */
  budget_after: { daily: BudgetAfter | null; monthly: BudgetAfter | null };
  /** At the current upstream rate, behind the jobs queued now; null while no rate is known or the queue is held. */
  eta_seconds: number | null;
  /** Why the batch's jobs would wait right now, if they would. */
  waiting_reason: string | null;
}

interface BudgetAfter {
  limit: number;
  used: number;
  remaining: number;
  resets_at: string;
}

export type EstimateDeps = Pick<AppDeps, 'redis' | 'config' | 'jobs' | 'budgets' | 'upstream' | 'queues'>;

/** Holds that stop the queue altogether: no ETA can be given while they last. */
const STOPPED = new Set(['upstream_unauthorized', 'upstream_out_of_credit', 'budget_exhausted']);

/** The dry run of a request: what its sink counted, its rejected rows and the options its items would be sent with. */
export interface DryRun {
  tally: DryRunTally;
  rejected: RejectedRow[];
  options?: Record<string, string>;
}

export async function estimateBatch(
  deps: EstimateDeps,
  tenantId: string,
  { tally, rejected, options }: DryRun,
): Promise<BatchEstimate> {
  const urlItems = tally.unseenItems;
  const fingerprints = tally.fileHashes.map((sha256) => fingerprintOf(tenantId, sha256, options));
  const distinct = [...new Set(fingerprints)];
  const [reusable, budget, waitingReason, ratePerSecond, queued] = await Promise.all([
    countReusable(deps, distinct),
    deps.budgets.state(tenantId),
    queueHold(deps, tenantId),
    currentRate(deps),
    queuedJobs(deps),
  ]);
  const calls = distinct.length - reusable + urlItems;
  const after = (period: BudgetPeriod | null): BudgetAfter | null =>
    period && {
      limit: period.limit,
      used: period.used + calls,
      remaining: period.limit - period.used - calls,
      resets_at: period.resetsAt,
    };
  const eta =
    ratePerSecond && !(waitingReason && STOPPED.has(waitingReason))
      ? Math.ceil((queued + calls) / ratePerSecond)
      : null;
  return {
    object: 'batch_estimate',
    items: tally.items,
    rejected,
    duplicates: fingerprints.length - distinct.length + reusable,
    upstream_calls: calls,
    upstream_calls_exact: urlItems === 0,
    url_items: urlItems,
    note:
      urlItems === 0
        ? null
        : `${urlItems} item(s) are image URLs or direct uploads, read by the workers: duplicates among them cannot be seen before fetching, so each counts as one call`,
    budget_after: { daily: after(budget.daily), monthly: after(budget.monthly) },
    eta_seconds: eta,
    waiting_reason: waitingReason,
  };
}

/**
 * Distinct images a worker would not send to ByByBG: an identical one is being processed
 * now (the item waits for it), or succeeded and its result is still kept — the same checks
 * the worker makes (dedup.ts, reuseResult).
 */
async function countReusable({ redis, config, jobs }: EstimateDeps, fingerprints: string[]): Promise<number> {
  if (fingerprints.length === 0) return 0;
  const claims = await redis.mget(...fingerprints.map((fingerprint) => dedupKey(config.redis.prefix, fingerprint)));
  const checks = claims.map(async (claim) => {
    if (!claim) return false;
    const [state, jobId] = [claim.slice(0, claim.indexOf(':')), claim.slice(claim.indexOf(':') + 1)];
    if (state === 'running') return true;
    const source = await jobs.get(jobId);
    return source?.status === 'succeeded' && Boolean(source.resultKey);
  });
  return (await Promise.all(checks)).filter(Boolean).length;
}

/** The rate the workers allow themselves now, else BYBYBG_RATE_LIMIT, else unknown. */
async function currentRate({ upstream, config }: EstimateDeps): Promise<number | null> {
  return (await upstream.rate())?.ratePerSecond ?? config.bybybg.rateLimitPerSecond ?? null;
}

/** Jobs ahead of a new batch: waiting (also while the queue is paused) or running; parked and delayed ones are not. */
async function queuedJobs({ queues }: EstimateDeps): Promise<number> {
  const counts = await queues.removeBg.getJobCounts('waiting', 'prioritized', 'active');
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}
