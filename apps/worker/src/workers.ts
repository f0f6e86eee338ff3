import { Worker, type Job } from 'bullmq';
import { bullPrefix, QUEUE_NAMES, type Config, type Logger, type Redis, type RemoveBgPayload, type Services, type WebhookPayload } from '@cutout/shared';
import type { ByByBGClient } from './bybybg/client.ts';
import { webhookBackoff } from './backoff.ts';
import { makeDeliverWebhookProcessor } from './processors/deliver-webhook.ts';
import { failJob, makeRemoveBgProcessor, type RemoveBgDeps } from './processors/remove-bg.ts';
import { makeUpstreamPause } from './upstream-pause.ts';

export interface WorkerDeps { config: Config; services: Services; connection: Redis; bybybg: ByByBGClient; log: Logger }

export interface RunningWorkers { removeBg: Worker<RemoveBgPayload>; webhooks: Worker<WebhookPayload>; close(): Promise<void> }

/**
 * No configured rate means "as fast as ByByBG lets us": a limiter is still needed so
 * that `queue.rateLimit()` (the global pause on 429) takes effect.
 */
const UNLIMITED_PER_SECOND = 100_000;

/** One BullMQ worker per queue, each with its own concurrency so slow webhooks never hold up images. */
export function startWorkers({ config, services, connection, bybybg, log }: WorkerDeps): RunningWorkers {
  const prefix = bullPrefix(config.redis.prefix);
  const removeBgDeps = {
    jobs: services.jobs,
    storage: services.storage,
    bybybg,
    webhooks: services.queues.webhooks,
    webhookAttempts: config.webhooks.retryScheduleMs.length,
    pause: makeUpstreamPause({ queue: services.queues.removeBg }),
    log: log.child({ queue: QUEUE_NAMES.removeBg }),
  };
  const removeBgProcessor = makeRemoveBgProcessor(removeBgDeps);
  const removeBg = new Worker<RemoveBgPayload>(QUEUE_NAMES.removeBg, removeBgProcessor, {
    connection,
    prefix,
    concurrency: config.worker.concurrency,
    limiter: { max: Math.max(1, Math.floor(config.bybybg.rateLimitPerSecond ?? UNLIMITED_PER_SECOND)), duration: 1000 },
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs,
    maxStalledCount: 2,
  });

  const backoff = webhookBackoff(config.webhooks.retryScheduleMs);
  const webhooks = new Worker<WebhookPayload>(
    QUEUE_NAMES.webhooks,
    makeDeliverWebhookProcessor({
      jobs: services.jobs,
      tenants: services.tenants,
      storage: services.storage,
      resultUrlTtlMs: config.api.resultUrlTtlMs,
      timeoutMs: config.webhooks.timeoutMs,
      log: log.child({ queue: QUEUE_NAMES.webhooks }),
    }),
    {
      connection,
      prefix,
      concurrency: config.worker.webhookConcurrency,
      settings: { backoffStrategy: (attemptsMade, _type, error) => backoff(attemptsMade, error as { retryAfterMs?: number }) },
    },
  );

  removeBg.on('failed', (job, error) => void failAbandoned(removeBgDeps, job, error));
  for (const worker of [removeBg, webhooks]) worker.on('error', (error) => log.error({ err: error, queue: worker.name }, 'worker error'));

  return {
    removeBg,
    webhooks,
    async close() {
      await Promise.all([removeBg.close(), webhooks.close()]);
    },
  };
}

/**
 * A job whose worker died too often (stalled past the limit) fails inside BullMQ without
 * reaching the processor; its record must not stay `processing` forever. Every other
 * final failure was recorded by the processor already, so `failJob` finds it ended.
 */
async function failAbandoned(deps: RemoveBgDeps, job: Job<RemoveBgPayload> | undefined, error: Error): Promise<void> {
  if (!job) return;
  try {
    if (!(await job.isFailed())) return;
    const failed = await failJob(deps, job.data.jobId, {
      code: 'worker_crashed', message: 'Processing this image stopped the worker repeatedly', retryable: false,
    });
    if (failed) deps.log.error({ job_id: job.data.jobId, err: error }, 'job failed after its worker stopped');
  } catch (cause) {
    deps.log.error({ job_id: job.data.jobId, err: cause }, 'could not record an abandoned job');
  }
}
