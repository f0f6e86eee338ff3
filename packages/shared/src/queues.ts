import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { randomBase62 } from './ids.ts';
import type { JobStatus } from './job-store.ts';

/** Queue names, shared by the API (producer) and the worker (consumer). */
export const QUEUE_NAMES = { removeBg: 'remove-bg', webhooks: 'webhooks' } as const;

export type WebhookEventType = 'job.succeeded' | 'job.failed' | 'batch.completed';

/** The event a job's end announces; a canceled job announces nothing. */
export function finalWebhookEvent(status: JobStatus): WebhookEventType | null {
  if (status === 'succeeded') return 'job.succeeded';
  if (status === 'failed') return 'job.failed';
  return null;
}

/** Payloads carry ids and keys, never image bytes; the job record holds the rest. */
export interface RemoveBgPayload {
  jobId: string;
  tenantId: string;
  /** Its fair-scheduling slot (fairness.ts): starting it moves the served position. */
  slot?: number;
}
/** `batchId` set: a batch event (`jobId` is then the batch id too, for logs). */
export interface WebhookPayload { messageId: string; type: WebhookEventType; jobId: string; tenantId: string; batchId?: string }

export interface QueuePayloads {
  'remove-bg': RemoveBgPayload;
  webhooks: WebhookPayload;
}

export type QueueName = keyof QueuePayloads;

/** BullMQ keys live under `<prefix>:bull`; a `{hash-tagged}` prefix keeps them in one Cluster slot. */
export const bullPrefix = (prefix: string): string => `${prefix}:bull`;

export interface Queues {
  removeBg: Queue<RemoveBgPayload>;
  webhooks: Queue<WebhookPayload>;
  close(): Promise<void>;
}

export function createQueues(connection: ConnectionOptions, prefix: string): Queues {
  const removeBg = new Queue<RemoveBgPayload>(QUEUE_NAMES.removeBg, { connection, prefix: bullPrefix(prefix) });
  const webhooks = new Queue<WebhookPayload>(QUEUE_NAMES.webhooks, { connection, prefix: bullPrefix(prefix) });
  return {
    removeBg,
    webhooks,
    async close() {
      await Promise.all([removeBg.close(), webhooks.close()]);
    },
  };
}

/**
 * Options of a `remove-bg` job. The BullMQ id is the Cutout job id, so enqueueing the
 * same job twice is a no-op. Transient failures back off exponentially with jitter. Finished BullMQ jobs are pruned; the job record keeps status.
 */
export function removeBgJobOptions(jobId: string, { attempts, retryDelayMs, priority }: { attempts: number; retryDelayMs: number; priority?: number }): JobsOptions {
  return {
    jobId,
    ...(priority === undefined ? {} : { priority }),
    attempts,
    backoff: { type: 'exponential', delay: retryDelayMs, jitter: 0.5 },
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 86_400, count: 10_000 },
  };
}

/**
 * Enqueues one webhook event. The BullMQ job id is the message id, so a job finished
 * twice (at-least-once processing) adds the event once. A redelivery passes a `bullJobId`
 * of its own (see redeliveryJobId): same message id, new delivery.
 */
export async function enqueueWebhook(queue: Queue<WebhookPayload>, payload: WebhookPayload, attempts: number, { bullJobId }: { bullJobId?: string } = {}): Promise<void> {
  await queue.add(payload.type, payload, {
    jobId: bullJobId ?? payload.messageId,
    attempts,
    backoff: { type: 'webhook-schedule' },
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  });
}

/**
 * The BullMQ id of a redelivery: unique, so BullMQ does not deduplicate it against the
 * first delivery. No ':' in it: BullMQ reserves colons in custom ids.
 */
export const redeliveryJobId = (messageId: string): string => `${messageId}-redeliver-${randomBase62(12)}`;
