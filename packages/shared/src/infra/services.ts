import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { makeBatchStore, type BatchStore } from '../stores/batch-store.ts';
import { makeFairScheduler, type FairScheduler } from '../stores/fairness.ts';
import { makeBatchFeeder, type BatchFeeder } from '../stores/batch-feeder.ts';
import { makeUploadStore, type UploadStore } from '../stores/upload-store.ts';
import { makeJobStore, type JobStore } from '../stores/job-store.ts';
import { createQueues, type Queues } from './queues.ts';
import { connectChecked, createRedis, type Redis } from './redis.ts';
import { createS3Client, makeStorage, type Storage } from './storage.ts';
import { makeTenantStore, type TenantStore } from '../stores/tenants.ts';
import { makeUpstreamState, type UpstreamState } from '../stores/upstream-state.ts';
import { makeJobStatusReader, type JobStatusReader } from '../stores/job-status.ts';
import { makeWebhookAttemptLog, type WebhookAttemptLog } from '../stores/webhook-attempts.ts';
import { makeUsage, type Usage } from '../stores/usage.ts';
import { makeBudgets, type Budgets } from '../stores/budgets.ts';
import { makeGoneEndpoints, type GoneEndpoints } from '../stores/webhook-endpoints.ts';
import { makeReviews, type Reviews } from '../stores/reviews.ts';
import { makeWebhookDeliveryLog, type WebhookDeliveryLog } from '../stores/webhook-deliveries.ts';
import { makeEndpointGate, type EndpointGate } from '../stores/webhook-gate.ts';
import { makeWebhookOutbox, type WebhookOutbox } from '../stores/webhook-outbox.ts';

/** The backing services every Cutout process talks to. */
export interface Services {
  redis: Redis;
  s3: S3Client;
  storage: Storage;
  jobs: JobStore;
  /** A status poll's record and queue hold, in one command. */
  jobStatus: JobStatusReader;
  batches: BatchStore;
  /** Hands batch items to the queue a window at a time. */
  batchFeeder: BatchFeeder;
  fair: FairScheduler;
  /** Direct uploads: the files a client PUTs straight to S3 before making them a batch. */
  uploads: UploadStore;
  tenants: TenantStore;
  queues: Queues;
  upstream: UpstreamState;
  webhookAttempts: WebhookAttemptLog;
  usage: Usage;
  budgets: Budgets;
  goneEndpoints: GoneEndpoints;
  reviews: Reviews;
  /** Every webhook delivery is queued through it (fair order, one pending delivery per event). */
  webhookOutbox: WebhookOutbox;
  /** The webhooks queue's own fair scheduler; a starting delivery moves its served position. */
  webhookFair: FairScheduler;
  webhookDeliveries: WebhookDeliveryLog;
  /** Per-endpoint concurrency, circuit breaker and parked deliveries. */
  webhookGate: EndpointGate;
  close(): Promise<void>;
}

/**
 * Connects to Redis (refusing an evicting one) and S3. `blocking` is for processes that
 * run BullMQ workers: their commands wait for Redis to come back instead of failing fast.
 */
export async function openServices(
  config: Config,
  { name, blocking = false, log }: { name: string; blocking?: boolean; log?: Logger },
): Promise<Services> {
  const redis = createRedis(config.redis, { blocking, connectionName: name, log });
  await connectChecked(redis, config.redis);
  const s3 = createS3Client(config.s3);
  const presignClient = config.s3.publicEndpoint
    ? createS3Client({ ...config.s3, endpoint: config.s3.publicEndpoint })
    : s3;
  const storage = makeStorage({ client: s3, bucket: config.s3.bucket, presignClient });
  const queues = createQueues(redis, config.redis.prefix);
  const { prefix } = config.redis;
  const webhookDeliveries = makeWebhookDeliveryLog({ redis, prefix, retentionMs: config.jobRetentionMs });
  const webhookFair = makeFairScheduler({ redis, prefix: `${prefix}:webhooks` });
  const schedule = config.webhooks.retryScheduleMs;
  const fair = makeFairScheduler({ redis, prefix: config.redis.prefix });
  const fairEnqueue = {
    queue: queues.removeBg,
    scheduler: fair,
    attempts: config.bybybg.maxAttempts,
    retryDelayMs: config.bybybg.retryDelayMs,
  };
  return {
    redis,
    s3,
    storage,
    queues,
    jobs: makeJobStore({ redis, prefix: config.redis.prefix, retentionMs: config.jobRetentionMs }),
    jobStatus: makeJobStatusReader({ redis, prefix }),
    batches: makeBatchStore({ redis, prefix: config.redis.prefix, retentionMs: config.jobRetentionMs }),
    fair,
    uploads: makeUploadStore({ redis, prefix }),
    batchFeeder: makeBatchFeeder({ redis, prefix, fairEnqueue, window: config.batches.queueWindow }),
    tenants: makeTenantStore({ redis, prefix: config.redis.prefix }),
    upstream: makeUpstreamState({ redis, prefix: config.redis.prefix }),
    webhookAttempts: makeWebhookAttemptLog({ redis, prefix: config.redis.prefix, retentionMs: config.jobRetentionMs }),
    usage: makeUsage({ redis, prefix: config.redis.prefix }),
    budgets: makeBudgets({ redis, prefix: config.redis.prefix }),
    goneEndpoints: makeGoneEndpoints({ redis, prefix: config.redis.prefix }),
    reviews: makeReviews({ redis, prefix: config.redis.prefix }),
    webhookOutbox: makeWebhookOutbox({
      queue: queues.webhooks,
      fair: webhookFair,
      deliveries: webhookDeliveries,
      maxAttempts: config.webhooks.maxAttempts,
    }),
    webhookFair,
    webhookDeliveries,
    webhookGate: makeEndpointGate({
      redis,
      prefix,
      settings: {
        concurrency: config.webhooks.endpointConcurrency,
        threshold: config.webhooks.circuitThreshold,
        // An open circuit waits as a failing delivery would: the schedule after its first entry.
        cooldownsMs: schedule.length > 1 ? schedule.slice(1) : schedule,
        // The delivery timeout plus time to build, sign and record the event.
        leaseTtlMs: config.webhooks.timeoutMs + 10_000,
        keepMs: config.jobRetentionMs,
      },
    }),
    async close() {
      await queues.close();
      await redis.quit().catch(() => redis.disconnect());
      s3.destroy();
      if (presignClient !== s3) presignClient.destroy();
    },
  };
}
