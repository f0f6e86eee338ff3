import { DelayedError, RateLimitError, UnrecoverableError, type Job } from 'bullmq';
import { resultKey, thumbKey, TERMINAL_STATUSES, type Budgets, type FairScheduler, type HoldReason, type Usage, type JobRecord, type Logger, type RemoveBgPayload, type Storage } from '@cutout/shared';
import type { ByByBGClient, CallSpend } from '../bybybg/client.ts';
import { UpstreamError, type UpstreamErrorKind } from '../bybybg/errors.ts';
import { fingerprintOf, type Dedup } from '../dedup.ts';
import type { RateGovernor } from '../upstream/governor.ts';
import type { QueueHold } from '../upstream/queue-hold.ts';
import type { UpstreamPause } from '../upstream/pause.ts';
import type { Thumbnailer } from '../thumbnails.ts';
import { announce, failJob, toJobError, type AnnounceDeps } from './outcomes.ts';
import { fetchOriginal, needsOriginal, type OriginalFetcher } from './fetch-original.ts';
import { awaitCredit, BudgetExhaustedError, makeCallLedger, parkForBudget, type SpendDeps } from './spend.ts';

export interface RemoveBgDeps extends AnnounceDeps, SpendDeps {
  storage: Storage;
  bybybg: ByByBGClient;
  pause: UpstreamPause;
  governor: RateGovernor;
  /** Holds the queue for every worker when the account cannot work (every key refused, no credit). */
  queueHold: QueueHold;
  budgets: Pick<Budgets, 'reserve' | 'refund'>;
  dedup: Dedup;
  /** Fetches batch items given by URL. */
  originals: OriginalFetcher;
  fair: FairScheduler;
  usage: Usage;
  /** How long a job may wait on 429s before it fails with upstream_rate_limited. */
  rateLimitBudgetMs: number;
  /** How often a duplicate checks whether the first copy of its image is done. */
  duplicatePollMs?: number;
  /** Makes the review page's thumbnails; absent when THUMBNAIL_SIZE is 0. */
  thumbnails?: Thumbnailer;
  log: Logger;
}

/**
 * Processes one `remove-bg` job: original from S3 → ByByBG → result to S3 → record →
 * webhook. Safe to run twice for the same job: the result key and webhook id are
 * derived from the job id, and a finished record is never processed again.
 */
export function makeRemoveBgProcessor(deps: RemoveBgDeps) {
  const { jobs, dedup, log } = deps;

  return async function processRemoveBg(job: Job<RemoveBgPayload>, token?: string): Promise<void> {
    const { jobId } = job.data;
    const jobLog = log.child({ job_id: jobId, tenant: job.data.tenantId, attempt: job.attemptsMade + 1 });
    // Starting this slot moves the fair scheduler's head, so a newly active tenant starts here.
    if (job.data.slot !== undefined) await deps.fair.served(job.data.slot).catch(() => undefined);
    let queued = await jobs.get(jobId);
    if (!queued) return jobLog.warn('job record missing; nothing to do');
    if (TERMINAL_STATUSES.includes(queued.status)) return announce(deps, queued);
    if (needsOriginal(queued)) {
      queued = await fetchOriginal(deps, queued, (processing, error) => handleFailure(deps, job, processing, error, jobLog));
      if (!queued) return;
    }

    const fingerprint = queued.originalSha256 ? fingerprintOf(queued.tenantId, queued.originalSha256, queued.options) : undefined;
    if (fingerprint) {
      const claim = await dedup.claim(fingerprint, jobId);
      if (claim.kind === 'done' && (await reuseResult(deps, job, queued, claim.jobId))) return jobLog.info({ from: claim.jobId }, 'job succeeded with a reused result');
      if (claim.kind === 'wait') {
        // An identical image is at ByByBG right now: wait for its result instead of paying twice.
        await jobs.transition(jobId, ['queued', 'processing'], { status: 'queued', waitingReason: 'duplicate_in_progress' });
        await job.moveToDelayed(Date.now() + (deps.duplicatePollMs ?? 1_000), token);
        throw new DelayedError();
      }
    }

    // The account's credit and the tenant's budget are checked before the job starts, so a
    // job that must wait never shows `processing`; the call reserved here is the first one made.
    const ledger = makeCallLedger(deps.budgets, queued.tenantId);
    try {
      await awaitCredit(deps, job, token, queued, jobLog);
      await ledger.reserve();
    } catch (error) {
      if (fingerprint) await dedup.release(fingerprint, jobId).catch(() => undefined);
      if (error instanceof BudgetExhaustedError) return parkForBudget(deps, job, token, queued, error, jobLog);
      throw error;
    }
    try {
      await callAndStore(deps, { job, token, queued, fingerprint, ledger, jobLog });
    } finally {
      await ledger.release().catch(() => undefined);
    }
  };
}

interface Call {
  job: Job<RemoveBgPayload>;
  token: string | undefined;
  queued: JobRecord;
  fingerprint: string | undefined;
  ledger: CallSpend;
  jobLog: Logger;
}

/** Moves the job to `processing`, calls ByByBG and stores the result; a failure goes to handleFailure. */
async function callAndStore(deps: RemoveBgDeps, { job, token, queued, fingerprint, ledger, jobLog }: Call): Promise<void> {
  const { jobs, storage, bybybg, dedup } = deps;
  const jobId = queued.id;
  const record = await jobs.transition(jobId, ['queued', 'processing'], { status: 'processing', startedAt: new Date().toISOString(), waitingReason: '' });
  if (!record) return;
  const started = Date.now();
  // The original's thumbnail is made while ByByBG works, so it adds nothing to the job's time.
  const originalThumb = deps.thumbnails?.fromStored(record.originalKey, thumbKey(record.tenantId, jobId, 'original'), jobId);
  try {
    const result = await bybybg.removeBackground({
      openImage: () => storage.getStream(record.originalKey),
      contentType: record.originalContentType,
      byteLength: record.originalBytes,
      options: record.options,
      spend: ledger,
      // The tenant's usage counts the call when it is reserved (budgets.ts); the record counts it here.
      onCall: () => void jobs.transition(jobId, ['processing'], {}, ['upstreamCalls']).catch(() => undefined),
    });
    await afterSuccessfulCall(deps, result.rateLimit);
    const key = resultKey(record.tenantId, jobId);
    const [stored, resultThumbKey, originalThumbKey] = await Promise.all([
      storage.putBuffer(key, result.body, result.contentType),
      deps.thumbnails?.fromBuffer(result.body, thumbKey(record.tenantId, jobId, 'cutout'), jobId),
      originalThumb,
    ]);
    const done = await jobs.transition(jobId, ['processing'], {
      status: 'succeeded', finishedAt: new Date().toISOString(), attempts: job.attemptsMade + 1,
      resultKey: key, resultBytes: stored.bytes, resultContentType: stored.contentType, originalThumbKey, resultThumbKey,
    });
    if (fingerprint) await dedup.succeeded(fingerprint, jobId);
    jobLog.info({ ms: Date.now() - started, bytes: stored.bytes }, 'job succeeded');
    if (done) await announce(deps, done);
  } catch (error) {
    if (fingerprint) await dedup.release(fingerprint, jobId).catch(() => undefined);
    await handleFailure(deps, job, record, error, jobLog, token);
  }
}

const LONG_WINDOW_MS = 1_000;

async function afterSuccessfulCall(deps: RemoveBgDeps, rateLimit: { limit?: number; remaining?: number; resetMs?: number }): Promise<void> {
  deps.pause.succeeded();
  await deps.governor.recordSuccess();
  if (rateLimit.remaining !== 0) return;
  // ByByBG says its allowance is used up. A long window (a per-minute quota) is waited out;
  // a short one is a token bucket refilling continuously, where stopping the rate from
  // growing is enough and a full stop would waste the refill.
  if (rateLimit.resetMs !== undefined && rateLimit.resetMs > LONG_WINDOW_MS) await deps.pause.holdFor(rateLimit.resetMs);
  else await deps.governor.recordAtLimit();
}

type Thumbnails = Pick<JobRecord, 'originalThumbKey' | 'resultThumbKey'>;

/** The thumbnail of a failed job's original, unless it never reached S3 (a URL item whose fetch failed). */
async function failureThumbnails({ thumbnails }: RemoveBgDeps, record: JobRecord): Promise<Thumbnails> {
  if (!thumbnails || needsOriginal(record)) return {};
  return { originalThumbKey: await thumbnails.fromStored(record.originalKey, thumbKey(record.tenantId, record.id, 'original'), record.id) };
}

/** An identical image's thumbnails, copied to this job's keys; each only when the source has it. */
async function copyThumbnails({ thumbnails }: RemoveBgDeps, source: JobRecord, record: JobRecord): Promise<Thumbnails> {
  if (!thumbnails) return {};
  const copy = (from: string | undefined, kind: 'original' | 'cutout') =>
    from ? thumbnails.copy(from, thumbKey(record.tenantId, record.id, kind), record.id) : undefined;
  const [originalThumbKey, resultThumbKey] = await Promise.all([copy(source.originalThumbKey, 'original'), copy(source.resultThumbKey, 'cutout')]);
  return { originalThumbKey, resultThumbKey };
}

/** Copies an identical image's stored result; false when it is gone and ByByBG must be called. */
async function reuseResult(deps: RemoveBgDeps, job: Job<RemoveBgPayload>, record: JobRecord, sourceJobId: string): Promise<boolean> {
  const source = await deps.jobs.get(sourceJobId);
  if (source?.status !== 'succeeded' || !source.resultKey) return false;
  const key = resultKey(record.tenantId, record.id);
  try {
    await deps.storage.copy(source.resultKey, key);
  } catch {
    return false;
  }
  const thumbs = await copyThumbnails(deps, source, record);
  const now = new Date().toISOString();
  const done = await deps.jobs.transition(record.id, ['queued', 'processing'], {
    status: 'succeeded', startedAt: now, finishedAt: now, attempts: job.attemptsMade + 1, creditsSaved: 1, waitingReason: '',
    resultKey: key, resultBytes: source.resultBytes, resultContentType: source.resultContentType, ...thumbs,
  });
  if (done) await Promise.all([announce(deps, done), deps.usage.add(record.tenantId, 'credits_saved').catch(() => undefined)]);
  return true;
}

/** Upstream outcomes that hold the whole queue, and the hold each starts. */
const QUEUE_HOLDS: Partial<Record<UpstreamErrorKind, HoldReason>> = {
  unauthorized: 'upstream_unauthorized',
  out_of_credit: 'upstream_out_of_credit',
};

async function handleFailure(deps: RemoveBgDeps, job: Job<RemoveBgPayload>, record: JobRecord, error: unknown, log: Logger, token?: string): Promise<never> {
  const { jobs } = deps;
  // A later call of the job (the next key after a 401) that the budget refused.
  if (error instanceof BudgetExhaustedError) return parkForBudget(deps, job, token, record, error, log);
  if (error instanceof UpstreamError && error.kind === 'rate_limited') {
    await deps.governor.recordRateLimited();
    const since = record.rateLimitedSince ?? new Date().toISOString();
    if (Date.now() - Date.parse(since) > deps.rateLimitBudgetMs) {
      const message = `ByByBG kept answering 429 for longer than ${Math.round(deps.rateLimitBudgetMs / 1000)} s`;
      await failJob(deps, record.id, { code: 'upstream_rate_limited', message, retryable: true }, job.attemptsMade + 1, await failureThumbnails(deps, record));
      throw new UnrecoverableError(message);
    }
    // The account, not this job, is at fault: pause the queue for every worker; no attempt is used.
    const delayMs = await deps.pause.pauseFor(error);
    await jobs.transition(record.id, ['processing'], { status: 'queued', waitingReason: 'upstream_rate_limited', rateLimitedSince: since });
    log.debug({ delayMs }, 'ByByBG rate limit; queue paused');
    throw new RateLimitError();
  }
  const reason = error instanceof UpstreamError ? QUEUE_HOLDS[error.kind] : undefined;
  if (reason && error instanceof UpstreamError) {
    // The account, not this job, is at fault: hold the queue for every worker; no attempt is used.
    await deps.queueHold.hold(reason, error.message);
    await jobs.transition(record.id, ['processing'], { status: 'queued', waitingReason: reason });
    throw new RateLimitError();
  }

  const jobError = toJobError(error);
  const final = !jobError.retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  if (!final) {
    await jobs.transition(record.id, ['processing'], { status: 'queued', waitingReason: 'retry_scheduled', attempts: job.attemptsMade + 1 });
    log.warn({ code: jobError.code, err: error }, 'attempt failed; will retry');
    throw error;
  }
  await failJob(deps, record.id, jobError, job.attemptsMade + 1, await failureThumbnails(deps, record));
  log.error({ code: jobError.code, err: error }, 'job failed');
  throw new UnrecoverableError(jobError.message);
}
