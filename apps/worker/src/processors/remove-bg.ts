import { RateLimitError, UnrecoverableError, type Job, type Queue } from 'bullmq';
import {
  enqueueWebhook, resultKey, webhookMessageId, TERMINAL_STATUSES,
  type JobError, type JobRecord, type JobStore, type Logger, type RemoveBgPayload, type Storage, type WebhookPayload,
} from '@cutout/shared';
import type { ByByBGClient } from '../bybybg/client.ts';
import { UpstreamError } from '../bybybg/errors.ts';
import type { UpstreamPause } from '../upstream-pause.ts';

export interface RemoveBgDeps {
  jobs: JobStore;
  storage: Storage;
  bybybg: ByByBGClient;
  webhooks: Queue<WebhookPayload>;
  webhookAttempts: number;
  pause: UpstreamPause;
  log: Logger;
}

/**
 * Processes one `remove-bg` job: original from S3 → ByByBG → result to S3 → record →
 * webhook. Safe to run twice for the same job: the result key and webhook id are
 * derived from the job id, and a finished record is never processed again.
 */
export function makeRemoveBgProcessor(deps: RemoveBgDeps) {
  const { jobs, storage, bybybg, pause, log } = deps;

  return async function processRemoveBg(job: Job<RemoveBgPayload>): Promise<void> {
    const { jobId } = job.data;
    const jobLog = log.child({ job_id: jobId, tenant: job.data.tenantId, attempt: job.attemptsMade + 1 });
    const record = await jobs.transition(jobId, ['queued', 'processing'], { status: 'processing', startedAt: new Date().toISOString(), waitingReason: '' }, ['attempts']);
    if (!record) return finishedAlready(deps, jobId, jobLog);

    const started = Date.now();
    try {
      const result = await bybybg.removeBackground({
        openImage: () => storage.getStream(record.originalKey),
        contentType: record.originalContentType,
        options: record.options,
        onCall: () => void jobs.transition(jobId, ['processing'], {}, ['upstreamCalls']),
      });
      pause.succeeded();
      const key = resultKey(record.tenantId, jobId);
      const stored = await storage.putBuffer(key, result.body, result.contentType);
      const done = await jobs.transition(jobId, ['processing'], {
        status: 'succeeded', finishedAt: new Date().toISOString(), resultKey: key, resultBytes: stored.bytes, resultContentType: stored.contentType,
      });
      jobLog.info({ ms: Date.now() - started, bytes: stored.bytes }, 'job succeeded');
      if (done) await announce(deps, done);
    } catch (error) {
      await handleFailure(deps, job, record, error, jobLog);
    }
  };
}

/** The job ended before (a duplicate delivery, or a crash after finishing): make sure its webhook exists. */
async function finishedAlready(deps: RemoveBgDeps, jobId: string, log: Logger): Promise<void> {
  const record = await deps.jobs.get(jobId);
  if (!record) return log.warn('job record missing; nothing to do');
  if (TERMINAL_STATUSES.includes(record.status)) await announce(deps, record);
}

async function announce(deps: Pick<RemoveBgDeps, 'webhooks' | 'webhookAttempts'>, record: JobRecord): Promise<void> {
  if (!record.webhookUrl || (record.status !== 'succeeded' && record.status !== 'failed')) return;
  const type = record.status === 'succeeded' ? 'job.succeeded' : 'job.failed';
  await enqueueWebhook(deps.webhooks, { messageId: webhookMessageId(record.id, type), type, jobId: record.id, tenantId: record.tenantId }, deps.webhookAttempts);
}

async function handleFailure(deps: RemoveBgDeps, job: Job<RemoveBgPayload>, record: JobRecord, error: unknown, log: Logger): Promise<never> {
  const { jobs, pause } = deps;
  if (error instanceof UpstreamError && (error.kind === 'rate_limited' || error.kind === 'unauthorized')) {
    // The account, not this job, is at fault: pause the queue for every worker; no attempt is used.
    const reason = error.kind === 'rate_limited' ? 'upstream_rate_limited' : 'upstream_unauthorized';
    const delayMs = await pause.pauseFor(error);
    await jobs.transition(record.id, ['processing'], { status: 'queued', waitingReason: reason });
    log.warn({ reason, delayMs }, 'upstream paused; job back in the queue');
    throw new RateLimitError();
  }

  const jobError = toJobError(error);
  const final = !jobError.retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  if (!final) {
    log.warn({ code: jobError.code, err: error }, 'attempt failed; will retry');
    throw error;
  }
  await failJob(deps, record.id, jobError);
  log.error({ code: jobError.code, err: error }, 'job failed');
  throw new UnrecoverableError(jobError.message);
}

/** Records the final failure of a job that has not ended yet, and announces it. */
export async function failJob(deps: Pick<RemoveBgDeps, 'jobs' | 'webhooks' | 'webhookAttempts'>, jobId: string, error: JobError): Promise<boolean> {
  const failed = await deps.jobs.transition(jobId, ['queued', 'processing'], { status: 'failed', finishedAt: new Date().toISOString(), error });
  if (failed) await announce(deps, failed);
  return failed !== null;
}

/** What a client sees of an error: upstream errors carry their own code; anything else is ours. */
function toJobError(error: unknown): JobError {
  if (error instanceof UpstreamError) return { code: error.code, message: error.message, retryable: error.retryable };
  const name = (error as { name?: string }).name ?? '';
  if (/^(NoSuchKey|NotFound)$/.test(name)) return { code: 'original_missing', message: 'The original image is no longer in storage', retryable: false };
  return { code: 'processing_error', message: 'The job could not be processed; it was retried and gave up', retryable: true };
}
