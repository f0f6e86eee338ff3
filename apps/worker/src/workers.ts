import type { Worker, Job } from 'bullmq';
import { makeImageFetcher } from '@cutout/shared/images';
import {
  bullPrefix,
  QUEUE_NAMES,
  type Config,
  type Logger,
  type Metrics,
  type Redis,
  type RemoveBgPayload,
  type Services,
  type WebhookPayload,
} from '@cutout/shared/infra';
import { createGuardedAgent } from '@cutout/shared/security';
import { makeDedup, HOLD_REASONS } from '@cutout/shared/stores';
import type { ByByBGClient } from './bybybg/client.ts';
import { webhookBackoff } from './backoff.ts';

import { makeJobOutcomeMetrics } from './job-metrics.ts';
import { queueWorker, type Processors } from './queue-workers.ts';
import { makeDeliverWebhookProcessor, type DeliveryError } from './processors/deliver-webhook.ts';
import { failJob } from './processors/job-endings.ts';
import { makeRemoveBgProcessor, type RemoveBgDeps } from './processors/remove-bg.ts';
import { makeOriginalFetcher } from './processors/fetch-original.ts';
import { makeThumbnailer } from './thumbnails.ts';
import { makeCutoutOutputs } from './postprocess/outputs.ts';
import { limiterFor, makeRateGovernor } from './upstream/governor.ts';
import { makeQueueHold } from './upstream/queue-hold.ts';
import { pacedClient } from './upstream/paced-client.ts';
import { makeUpstreamPause } from './upstream/pause.ts';
import { makeParkingLots } from './spend/parking.ts';
import { makeWaker } from './spend/waker.ts';
import { startMaintenance } from './maintenance.ts';

export interface WorkerDeps {
  config: Config;
  services: Services;
  connection: Redis;
  bybybg: ByByBGClient;
  metrics: Metrics;
  log: Logger;
}

export interface RunningWorkers {
  removeBg: Worker<RemoveBgPayload>;
  webhooks: Worker<WebhookPayload>;
  close(): Promise<void>;
}

const GOVERNOR_TICK_MS = 1_000;

/** One BullMQ worker per queue, each with its own concurrency so slow webhooks never hold up images. */
export function startWorkers({ config, services, connection, bybybg, metrics, log }: WorkerDeps): RunningWorkers {
  const prefix = bullPrefix(config.redis.prefix);
  const { redis, queues } = services;
  const { upstream } = services;
  const governor = makeRateGovernor({
    redis,
    prefix: config.redis.prefix,
    settings: { configuredPerSecond: config.bybybg.rateLimitPerSecond },
  });
  const queueHold = makeQueueHold({
    redis,
    prefix: config.redis.prefix,
    queue: queues.removeBg,
    upstream,
    bybybg,
    policies: {
      upstream_unauthorized: { probeIntervalMs: config.bybybg.keyProbeIntervalMs },
      upstream_out_of_credit: {
        probeIntervalMs: config.bybybg.creditProbeIntervalMs,
        budgetMs: config.bybybg.outOfCreditBudgetMs,
      },
    },
    onChange: (reason, change, heldMs) => {
      if (change === 'started') metrics.upstreamHolds.inc({ reason });
      else metrics.upstreamHoldSeconds.inc({ reason }, (heldMs ?? 0) / 1000);
    },
    onState: (holds) => {
      for (const reason of HOLD_REASONS) metrics.upstreamHeld.set({ reason }, holds[reason] ? 1 : 0);
    },
    log: log.child({ component: 'queue-hold' }),
  });
  const parking = makeParkingLots({
    redis,
    prefix: config.redis.prefix,
    queue: queues.removeBg,
    onPark: (lot) => metrics.parkedJobs.inc({ lot }),
  });
  const waker = makeWaker({
    redis,
    prefix: config.redis.prefix,
    parking,
    budgets: services.budgets,
    upstream,
    log: log.child({ component: 'parking' }),
  });
  // Batch items given by URL are fetched here, through the same SSRF guard as webhooks.
  const imagePolicy = { allowPrivate: config.webhooks.allowPrivate };
  const guardLog = log.child({ component: 'url-guard' });
  const imageAgent = createGuardedAgent({ policy: imagePolicy, log: guardLog });
  const originals = makeOriginalFetcher({
    images: makeImageFetcher({
      dispatcher: imageAgent,
      policy: imagePolicy,
      timeoutMs: config.api.imageUrlTimeoutMs,
      maxBytes: config.api.maxUploadBytes,
    }),
    storage: services.storage,
    maxBytes: config.api.maxUploadBytes,
    maxPixels: config.api.maxImagePixels,
  });
  const removeBgDeps: RemoveBgDeps = {
    jobs: services.jobs,
    batches: services.batches,
    fair: services.fair,
    feeder: services.batchFeeder,
    originals,
    storage: services.storage,
    // Every remove-bg request takes its start slot from the shared pacer.
    bybybg: pacedClient(bybybg, governor),
    outbox: services.webhookOutbox,
    pause: makeUpstreamPause({
      queue: queues.removeBg,
      upstream,
      onPause: (addedMs, started) => {
        if (started) metrics.upstreamRateLimitPauses.inc();
        metrics.upstreamRateLimitPauseSeconds.inc(addedMs / 1000);
      },
    }),
    governor,
    queueHold,
    upstream,
    parking,
    budgets: {
      reserve: (tenantId) => services.budgets.reserve(tenantId),
      refund: (reservation) => services.budgets.refund(reservation),
    },
    outOfCreditBudgetMs: config.bybybg.outOfCreditBudgetMs,
    dedup: makeDedup({
      redis,
      prefix: config.redis.prefix,
      runningTtlMs: config.bybybg.timeoutMs + 30_000,
      retentionMs: config.jobRetentionMs,
    }),
    usage: services.usage,
    rateLimitBudgetMs: config.bybybg.rateLimitBudgetMs,
    allowedOptions: config.bybybg.allowedOptions,
    thumbnails:
      config.worker.thumbnailSize > 0
        ? makeThumbnailer({
            storage: services.storage,
            size: config.worker.thumbnailSize,
            log: log.child({ component: 'thumbnails' }),
          })
        : undefined,
    outputs: makeCutoutOutputs({
      storage: services.storage,
      maxPixels: config.api.maxImagePixels,
      thresholds: config.worker.quality,
      decodeSlots: config.worker.renditionConcurrency,
      log: log.child({ component: 'cutout-outputs' }),
    }),
    log: log.child({ queue: QUEUE_NAMES.removeBg }),
  };
  const limiter = limiterFor(governor.current().ratePerSecond);
  metrics.setUpstreamRate(governor.current());
  const backoff = webhookBackoff(config.webhooks.retryScheduleMs);
  // One agent for every delivery: it checks each address after DNS, at connect time (SSRF guard).
  const webhookAgent = createGuardedAgent({
    policy: { allowPrivate: config.webhooks.allowPrivate },
    connectTimeoutMs: config.webhooks.timeoutMs,
    log: guardLog,
  });
  // A processor for every queue, or the worker does not start (queue-workers.ts).
  const processors: Processors = {
    [QUEUE_NAMES.removeBg]: makeRemoveBgProcessor(removeBgDeps),
    [QUEUE_NAMES.webhooks]: makeDeliverWebhookProcessor({
      jobs: services.jobs,
      batches: services.batches,
      deliveries: services.webhookDeliveries,
      publicBaseUrl: config.api.publicBaseUrl,
      tenants: services.tenants,
      storage: services.storage,
      attempts: services.webhookAttempts,
      goneEndpoints: services.goneEndpoints,
      gate: services.webhookGate,
      fair: services.webhookFair,
      wake: (ids) => services.webhookOutbox.wake(ids),
      retryScheduleMs: config.webhooks.retryScheduleMs,
      endpointConcurrency: config.webhooks.endpointConcurrency,
      leaseTtlMs: services.webhookGate.leaseTtlMs,
      resultUrlTtlMs: config.api.resultUrlTtlMs,
      timeoutMs: config.webhooks.timeoutMs,
      dispatcher: webhookAgent,
      observe: {
        held: (reason) => metrics.webhookDeliveriesHeld.inc({ reason }),
        circuit: (transition) => metrics.webhookCircuitTransitions.inc({ transition }),
      },
      log: log.child({ queue: QUEUE_NAMES.webhooks }),
    }),
  };
  const removeBg = queueWorker(QUEUE_NAMES.removeBg, processors, {
    connection,
    prefix,
    concurrency: config.worker.concurrency,
    // The same object is read on every fetch, so the governor can retune it in place; it is a
    // safety net above the governor's rate, the pacer spaces the calls themselves.
    limiter,
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs,
    maxStalledCount: 2,
  });

  const governorTimer = setInterval(() => {
    governor.tick().then(
      (state) => {
        Object.assign(limiter, limiterFor(state.ratePerSecond));
        metrics.setUpstreamRate(state);
      },
      (error: unknown) => log.warn({ err: error }, 'rate governor tick failed'),
    );
  }, GOVERNOR_TICK_MS);
  governorTimer.unref();
  queueHold.start();
  waker.start();
  const maintenance = startMaintenance({ services, config, log: log.child({ component: 'maintenance' }) });
  const webhooks = queueWorker(QUEUE_NAMES.webhooks, processors, {
    connection,
    prefix,
    concurrency: config.worker.webhookConcurrency,
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs,
    // The processor computed the delay it shows the client as next_attempt_at; older errors fall back to the schedule.
    settings: {
      backoffStrategy: (attemptsMade, _type, error) =>
        (error as DeliveryError | undefined)?.delayMs ?? backoff(attemptsMade, error as { retryAfterMs?: number }),
    },
  });

  const outcomes = makeJobOutcomeMetrics({ jobs: services.jobs, metrics, usage: services.usage, log });
  removeBg.on('completed', (job) => void outcomes.removeBgSettled(job));
  // Counted once failAbandoned has recorded a crashed job's failure.
  removeBg.on(
    'failed',
    (job, error) => void failAbandoned(removeBgDeps, job, error).then(() => outcomes.removeBgSettled(job)),
  );
  webhooks.on('completed', (job) => outcomes.webhookDelivered(job));
  webhooks.on('failed', (job) => void outcomes.webhookFailed(job));
  for (const worker of [removeBg, webhooks])
    worker.on('error', (error) => log.error({ err: error, queue: worker.name }, 'worker error'));

  return {
    removeBg,
    webhooks,
    async close() {
      clearInterval(governorTimer);
      queueHold.stop();
      waker.stop();
      await maintenance.stop();
      await Promise.all([removeBg.close(), webhooks.close()]);
      await Promise.all([webhookAgent.close(), imageAgent.close()]);
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
      code: 'worker_crashed',
      message: 'Processing this image stopped the worker repeatedly',
      retryable: false,
    });
    if (failed) deps.log.error({ job_id: job.data.jobId, err: error }, 'job failed after its worker stopped');
  } catch (cause) {
    deps.log.error({ job_id: job.data.jobId, err: cause }, 'could not record an abandoned job');
  }
}
