import type { Job } from 'bullmq';
import type { Logger, Metrics, RemoveBgPayload, WebhookPayload } from '@cutout/shared/infra';
import type { JobRecord, JobStore, Usage } from '@cutout/shared/stores';

/**
 * Job and webhook outcomes for metrics and the tenant's daily usage, taken from the BullMQ
 * workers' `completed` and `failed` events so the processors stay free of counting code.
 */
export interface JobOutcomeMetrics {
  /** After a remove-bg run completed or failed: counts the job if this run ended it. */
  removeBgSettled(job: Job<RemoveBgPayload> | undefined): Promise<void>;
  webhookDelivered(job: Job<WebhookPayload>): void;
  webhookFailed(job: Job<WebhookPayload> | undefined): Promise<void>;
}

export function makeJobOutcomeMetrics({
  jobs,
  metrics,
  usage,
  log,
}: {
  jobs: Pick<JobStore, 'get'>;
  metrics: Metrics;
  usage?: Pick<Usage, 'add'>;
  log: Logger;
}): JobOutcomeMetrics {
  return {
    async removeBgSettled(job) {
      if (!job) return;
      try {
        // The record, not the BullMQ event, says how the job ended: a failed attempt that
        // will be retried leaves it queued, and a RateLimitError fires no event at all.
        const record = await jobs.get(job.data.jobId);
        if (!record || !endedDuring(record, job)) return;
        metrics.jobsFinished.inc({ status: record.status, code: record.error?.code ?? 'none' });
        await usage?.add(record.tenantId, record.status === 'succeeded' ? 'jobs_succeeded' : 'jobs_failed');
        if (record.startedAt)
          metrics.jobProcessingSeconds.observe(secondsBetween(record.startedAt, record.finishedAt!));
        if (record.status === 'succeeded' && record.creditsSaved) metrics.creditsSaved.inc(record.creditsSaved);
      } catch (error) {
        log.debug({ err: error, job_id: job.data.jobId }, 'job outcome not counted');
      }
    },
    webhookDelivered(job) {
      metrics.webhookDeliveries.inc({ outcome: 'delivered', attempt: String(job.attemptsMade) });
    },
    async webhookFailed(job) {
      if (!job) return;
      try {
        // BullMQ emits `failed` for every failed attempt; only the last leaves the job failed.
        const outcome = (await job.isFailed()) ? 'failed' : 'retrying';
        metrics.webhookDeliveries.inc({ outcome, attempt: String(job.attemptsMade) });
      } catch (error) {
        log.debug({ err: error, job_id: job.data.jobId }, 'webhook outcome not counted');
      }
    },
  };
}

/**
 * Whether the run that just settled ended the job (rather than finding it ended by an
 * earlier run, as at-least-once delivery allows): the record ended after the run began.
 */
function endedDuring(record: JobRecord, job: Job): boolean {
  if (record.status !== 'succeeded' && record.status !== 'failed') return false;
  if (!record.finishedAt) return false;
  return job.processedOn === undefined || Date.parse(record.finishedAt) >= job.processedOn;
}

const secondsBetween = (from: string, to: string): number => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);
