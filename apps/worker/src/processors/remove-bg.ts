import { Readable } from 'node:stream';
import { DelayedError, RateLimitError, UnrecoverableError, type Job } from 'bullmq';
import {
  isMissingObject,
  resultKey,
  thumbKey,
  type Logger,
  type RemoveBgPayload,
  type Storage,
} from '@cutout/shared/infra';
import { allowedOptionsText, refusedOptions } from '@cutout/shared/security';
import {
  fingerprintOf,
  type BatchFeeder,
  type Budgets,
  type Dedup,
  type FairScheduler,
  type Usage,
  type JobRecord,
} from '@cutout/shared/stores';
import { isTerminal } from '@cutout/shared/views';
import type { ByByBGClient, CallSpend } from '../bybybg/client.ts';
import type { CutoutOutputs } from '../postprocess/outputs.ts';
import { UpstreamError } from '../bybybg/errors.ts';
import type { RateGovernor } from '../upstream/governor.ts';
import type { QueueHold } from '../upstream/queue-hold.ts';
import type { UpstreamPause } from '../upstream/pause.ts';
import type { Thumbnailer } from '../thumbnails.ts';
import { decide } from './failure-decision.ts';
import { announce, failJob, type AnnounceDeps } from './job-endings.ts';
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
  /** Queues a batch's next items as its queued ones start. */
  feeder: BatchFeeder;
  usage: Usage;
  /** How long a job may wait on 429s before it fails with upstream_rate_limited. */
  rateLimitBudgetMs: number;
  /** How often a duplicate checks whether the first copy of its image is done. */
  duplicatePollMs?: number;
  /** `options` names that may reach ByByBG (BYBYBG_ALLOWED_OPTIONS), checked again here for jobs queued before it changed. */
  allowedOptions: readonly string[];
  /** Makes the review page's thumbnails; absent when THUMBNAIL_SIZE is 0. */
  thumbnails?: Thumbnailer;
  /** Measures each cutout's quality and makes its renditions. */
  outputs: CutoutOutputs;
  log: Logger;
}

/** The upstream's cutout, in memory and stored at `key`. */
interface Cutout {
  body: Buffer;
  key: string;
  bytes: number;
  contentType: string;
}

/**
 * Processes one `remove-bg` job: original from S3 → ByByBG → result to S3 → quality and
 * renditions → record → webhook. Safe to run twice for the same job: the result,
 * rendition keys and webhook id are derived from the job id, a stored cutout is not paid
 * for again, and a finished record is never processed again.
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
    if (queued.batchId)
      void deps.feeder
        .topUp(queued.batchId)
        .catch((error: unknown) => jobLog.warn({ err: error }, 'batch items not queued; the sweep will'));
    if (isTerminal(queued.status)) return announce(deps, queued);
    const refused = refusedOptions(queued.options, deps.allowedOptions);
    if (refused.length > 0) {
      // Queued before the operator narrowed the allow-list: ByByBG is not called with them.
      const message = `options ${refused.map((name) => `"${name}"`).join(', ')} are not forwarded to ByByBG any more (${allowedOptionsText(deps.allowedOptions)}); submit the image again without them`;
      await failJob(deps, jobId, { code: 'invalid_options', message, retryable: false }, job.attemptsMade + 1);
      jobLog.warn({ options: refused }, 'job failed: options not allowed');
      throw new UnrecoverableError(message);
    }
    if (needsOriginal(queued)) {
      queued = await fetchOriginal(deps, queued, (processing, error) =>
        handleFailure(deps, job, processing, error, jobLog),
      );
      if (!queued) return;
    }

    const fingerprint = queued.originalSha256
      ? fingerprintOf(queued.tenantId, queued.originalSha256, queued.options)
      : undefined;
    if (fingerprint) {
      const claim = await dedup.claim(fingerprint, jobId);
      if (claim.kind === 'done' && (await reuseResult(deps, job, queued, claim.jobId, jobLog)))
        return jobLog.info({ from: claim.jobId }, 'job succeeded with a reused result');
      if (claim.kind === 'wait') {
        // An identical image is at ByByBG right now: wait for its result instead of paying twice.
        await jobs.transition(jobId, ['queued', 'processing'], {
          status: 'queued',
          waitingReason: 'duplicate_in_progress',
        });
        await job.moveToDelayed(Date.now() + (deps.duplicatePollMs ?? 1_000), token);
        throw new DelayedError();
      }
    }

    if (queued.resultKey) {
      // An earlier attempt paid for the cutout and stored it: no call, so no credit or budget is needed.
      return callAndStore(deps, { job, token, queued, fingerprint, ledger: undefined, jobLog });
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
  /** The job's account of its calls; absent when no call is to be made (a stored cutout). */
  ledger: CallSpend | undefined;
  jobLog: Logger;
}

/**
 * Moves the job to `processing`, gets the cutout (stored by an earlier attempt, or from
 * ByByBG), measures it and makes its renditions while it uploads, and ends the job; a
 * failure goes to handleFailure.
 */
async function callAndStore(
  deps: RemoveBgDeps,
  { job, token, queued, fingerprint, ledger, jobLog }: Call,
): Promise<void> {
  const { jobs, storage, dedup } = deps;
  const jobId = queued.id;
  const record = await jobs.transition(jobId, ['queued', 'processing'], {
    status: 'processing',
    startedAt: new Date().toISOString(),
    waitingReason: null,
  });
  if (!record) return;
  const started = Date.now();
  try {
    const reloaded = await storedCutout(storage, record);
    // A small original is read once: its thumbnail and the upstream call (and its retries)
    // use the same bytes instead of a GET each.
    const original = reloaded || !deps.thumbnails ? undefined : await smallOriginal(storage, record);
    // The original's thumbnail is made while ByByBG works, so it adds nothing to the job's time.
    const thumbAt = thumbKey(record.tenantId, jobId, 'original');
    const originalThumb = original
      ? deps.thumbnails?.fromBuffer(original, thumbAt, jobId)
      : deps.thumbnails?.fromStored(record.originalKey, thumbAt, jobId);
    const cutout = reloaded
      ? { body: reloaded.body, stored: Promise.resolve(reloaded) }
      : await callByByBG(deps, record, ledger, original);
    const upstreamMs = Date.now() - started;
    // Measuring and rendering overlap the cutout's upload; none of it holds ByByBG's rate.
    const [stored, outputs, resultThumbKey, originalThumbKey] = await settled([
      cutout.stored,
      deps.outputs.make(record, cutout.body),
      deps.thumbnails?.fromBuffer(cutout.body, thumbKey(record.tenantId, jobId, 'cutout'), jobId),
      originalThumb,
    ] as const);
    const done = await jobs.transition(jobId, ['processing'], {
      status: 'succeeded',
      finishedAt: new Date().toISOString(),
      attempts: job.attemptsMade + 1,
      resultKey: stored.key,
      resultBytes: stored.bytes,
      resultContentType: stored.contentType,
      originalThumbKey,
      resultThumbKey,
      ...outputs,
    });
    if (fingerprint) await dedup.succeeded(fingerprint, jobId);
    jobLog.info(
      {
        ms: Date.now() - started,
        upstream_ms: upstreamMs,
        bytes: stored.bytes,
        reused_cutout: Boolean(reloaded),
        quality_flags: outputs.quality?.flags,
      },
      'job succeeded',
    );
    if (done) await announce(deps, done);
  } catch (error) {
    if (fingerprint) await dedup.release(fingerprint, jobId).catch(() => undefined);
    await handleFailure(deps, job, record, error, jobLog, token);
  }
}

/** Calls ByByBG; the cutout is in memory at once, and `stored` once it is in S3 and the record says so. */
async function callByByBG(
  deps: RemoveBgDeps,
  record: JobRecord,
  spend: CallSpend | undefined,
  original: Buffer | undefined,
): Promise<{ body: Buffer; stored: Promise<Cutout> }> {
  const { jobs, storage } = deps;
  const result = await deps.bybybg.removeBackground({
    openImage: async () => (original ? Readable.from([original]) : storage.getStream(record.originalKey)),
    contentType: record.originalContentType,
    byteLength: record.originalBytes,
    options: record.options,
    spend,
    // The tenant's usage counts the call when it is reserved (budgets.ts); the record counts it here.
    onCall: () => void jobs.transition(record.id, ['processing'], {}, ['upstreamCalls']).catch(() => undefined),
  });
  await afterSuccessfulCall(deps, result.rateLimit);
  const key = resultKey(record.tenantId, record.id);
  const stored = storage.putBuffer(key, result.body, result.contentType).then(async ({ bytes, contentType }) => {
    // Recorded before the job ends: if what follows fails (a rendition cannot be stored, the
    // worker dies), the retry finds this cutout instead of paying ByByBG for it again.
    await jobs.transition(record.id, ['processing'], {
      resultKey: key,
      resultBytes: bytes,
      resultContentType: contentType,
    });
    return { body: result.body, key, bytes, contentType };
  });
  return { body: result.body, stored };
}

/** Originals up to this size are held in memory while their job runs (8 per worker by default: 32 MB at most). */
const SMALL_ORIGINAL_BYTES = 4 * 1024 * 1024;

/** The original's bytes when it is known to be small; undefined otherwise (it is streamed from S3). */
async function smallOriginal(storage: Storage, record: JobRecord): Promise<Buffer | undefined> {
  if (!(record.originalBytes > 0 && record.originalBytes <= SMALL_ORIGINAL_BYTES)) return undefined;
  const body = await storage.getBuffer(record.originalKey);
  // A record that understated the size is not trusted further: the stream path has its own bounds.
  return body.length <= SMALL_ORIGINAL_BYTES ? body : undefined;
}

/** The cutout an earlier attempt of this job stored; null when there is none (or it is gone). */
async function storedCutout(storage: Storage, record: JobRecord): Promise<Cutout | null> {
  if (!record.resultKey) return null;
  try {
    const body = await storage.getBuffer(record.resultKey);
    return { body, key: record.resultKey, bytes: body.length, contentType: record.resultContentType ?? 'image/png' };
  } catch (error) {
    if (isMissingObject(error)) return null;
    throw error;
  }
}

/**
 * Promise.all that waits for every promise before it throws the first rejection, so a
 * failure never leaves a write running behind the failure handling.
 */
async function settled<T extends readonly unknown[]>(
  promises: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const outcomes = await Promise.allSettled(promises);
  const failed = outcomes.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}

const LONG_WINDOW_MS = 1_000;

async function afterSuccessfulCall(
  deps: RemoveBgDeps,
  rateLimit: { limit?: number; remaining?: number; resetMs?: number },
): Promise<void> {
  deps.pause.succeeded();
  await deps.governor.recordSuccess();
  if (rateLimit.remaining !== 0) return;
  // ByByBG says its allowance is used up. A long window (a per-minute quota) is waited out;
  // a short one is a token bucket refilling continuously, where stopping the rate from
  // growing is enough and a full stop would waste the refill.
  if (rateLimit.resetMs !== undefined && rateLimit.resetMs > LONG_WINDOW_MS)
    await deps.pause.holdFor(rateLimit.resetMs);
  else await deps.governor.recordAtLimit();
}

type Thumbnails = Pick<JobRecord, 'originalThumbKey' | 'resultThumbKey'>;

/** The thumbnail of a failed job's original, unless it never reached S3 (a URL item whose fetch failed). */
async function failureThumbnails({ thumbnails }: RemoveBgDeps, record: JobRecord): Promise<Thumbnails> {
  if (!thumbnails || needsOriginal(record)) return {};
  return {
    originalThumbKey: await thumbnails.fromStored(
      record.originalKey,
      thumbKey(record.tenantId, record.id, 'original'),
      record.id,
    ),
  };
}

/** An identical image's thumbnails, copied to this job's keys; each only when the source has it. */
async function copyThumbnails({ thumbnails }: RemoveBgDeps, source: JobRecord, record: JobRecord): Promise<Thumbnails> {
  if (!thumbnails) return {};
  const copy = (from: string | undefined, kind: 'original' | 'cutout') =>
    from ? thumbnails.copy(from, thumbKey(record.tenantId, record.id, kind), record.id) : undefined;
  const [originalThumbKey, resultThumbKey] = await Promise.all([
    copy(source.originalThumbKey, 'original'),
    copy(source.resultThumbKey, 'cutout'),
  ]);
  return { originalThumbKey, resultThumbKey };
}

/**
 * Copies an identical image's stored result and makes this job's own renditions from it
 * (its quality is the source's); false when the result is gone and ByByBG must be called.
 */
async function reuseResult(
  deps: RemoveBgDeps,
  job: Job<RemoveBgPayload>,
  record: JobRecord,
  sourceJobId: string,
  log: Logger,
): Promise<boolean> {
  const source = await deps.jobs.get(sourceJobId);
  if (source?.status !== 'succeeded' || !source.resultKey) return false;
  const key = resultKey(record.tenantId, record.id);
  try {
    await deps.storage.copy(source.resultKey, key);
  } catch {
    return false;
  }
  const now = new Date().toISOString();
  const processing = await deps.jobs.transition(record.id, ['queued', 'processing'], {
    status: 'processing',
    startedAt: now,
    waitingReason: null,
  });
  if (!processing) return true; // canceled meanwhile
  try {
    const needsCutout = (processing.renditionPlans?.length ?? 0) > 0 || !source.quality;
    const [thumbs, outputs] = await settled([
      copyThumbnails(deps, source, record),
      needsCutout
        ? deps.storage
            .getBuffer(key)
            .then((cutout) => deps.outputs.make(processing, cutout, { quality: source.quality }))
        : { quality: source.quality, qualityFlagged: source.qualityFlagged },
    ] as const);
    const done = await deps.jobs.transition(record.id, ['processing'], {
      status: 'succeeded',
      finishedAt: new Date().toISOString(),
      attempts: job.attemptsMade + 1,
      creditsSaved: 1,
      resultKey: key,
      resultBytes: source.resultBytes,
      resultContentType: source.resultContentType,
      ...thumbs,
      ...outputs,
    });
    if (done)
      await Promise.all([
        announce(deps, done),
        deps.usage.add(record.tenantId, 'credits_saved').catch(() => undefined),
      ]);
    return true;
  } catch (error) {
    return handleFailure(deps, job, processing, error, log);
  }
}

/** Carries out what `decide` makes of a failed attempt; always throws (BullMQ reads the outcome from the error). */
async function handleFailure(
  deps: RemoveBgDeps,
  job: Job<RemoveBgPayload>,
  record: JobRecord,
  error: unknown,
  log: Logger,
  token?: string,
): Promise<never> {
  const { jobs } = deps;
  const attempts = job.attemptsMade + 1;
  // The governor learns from every 429 first: while it discovers the limit, its cut is the answer.
  const rate =
    error instanceof UpstreamError && error.kind === 'rate_limited'
      ? await deps.governor.recordRateLimited()
      : undefined;
  const action = decide({
    error,
    attemptsMade: job.attemptsMade,
    maxAttempts: job.opts.attempts ?? 1,
    rateLimitedSince: record.rateLimitedSince,
    rateLimitBudgetMs: deps.rateLimitBudgetMs,
    now: Date.now(),
    rateMode: rate?.mode,
    canDelayJob: token !== undefined,
  });
  switch (action.kind) {
    case 'park_for_budget':
      return parkForBudget(deps, job, token, record, action.error, log);
    case 'delay_for_rate_limit':
      // Finding the limit: only this job waits out Retry-After; the queue keeps its pace.
      await jobs.transition(record.id, ['processing'], {
        status: 'queued',
        waitingReason: 'upstream_rate_limited',
        rateLimitedSince: action.rateLimitedSince,
      });
      await job.moveToDelayed(Date.now() + action.delayMs, token);
      throw new DelayedError();
    case 'wait_for_rate_limit': {
      // The account, not this job, is at fault: pause the queue for every worker; no attempt is used.
      const delayMs = await deps.pause.pauseFor(error as UpstreamError);
      await jobs.transition(record.id, ['processing'], {
        status: 'queued',
        waitingReason: 'upstream_rate_limited',
        rateLimitedSince: action.rateLimitedSince,
      });
      log.debug({ delayMs }, 'ByByBG rate limit; queue paused');
      throw new RateLimitError();
    }
    case 'hold_queue':
      // The account, not this job, is at fault: hold the queue for every worker; no attempt is used.
      await deps.queueHold.hold(action.reason, action.message);
      await jobs.transition(record.id, ['processing'], { status: 'queued', waitingReason: action.reason });
      throw new RateLimitError();
    case 'retry':
      await jobs.transition(record.id, ['processing'], {
        status: 'queued',
        waitingReason: 'retry_scheduled',
        attempts,
      });
      log.warn({ code: action.error.code, err: error }, 'attempt failed; will retry');
      throw error;
    case 'fail':
      await failJob(deps, record.id, action.error, attempts, await failureThumbnails(deps, record));
      log.error({ code: action.error.code, err: error }, 'job failed');
      throw new UnrecoverableError(action.error.message);
  }
}
