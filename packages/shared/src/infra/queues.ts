import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { JobStatus } from '../views/job-codes.ts';

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
/**
 * `batchId` set: a batch event (`jobId` is then the batch id too, for logs). Every delivery
 * goes out through the outbox (webhook-outbox.ts), which sets its fair-scheduling `slot`.
 */
export interface WebhookPayload {
  messageId: string;
  type: WebhookEventType;
  jobId: string;
  tenantId: string;
  batchId?: string;
  slot?: number;
}

/** Each queue's payload, by queue name: producers (Queue) and consumers (Worker) are typed from it. */
interface QueuePayloads {
  [QUEUE_NAMES.removeBg]: RemoveBgPayload;
  [QUEUE_NAMES.webhooks]: WebhookPayload;
}

export type QueueName = keyof QueuePayloads;
export type PayloadOf<N extends QueueName> = QueuePayloads[N];

/** BullMQ keys live under `<prefix>:bull`; a `{hash-tagged}` prefix keeps them in one Cluster slot. */
export const bullPrefix = (prefix: string): string => `${prefix}:bull`;

export interface Queues {
  removeBg: Queue<PayloadOf<typeof QUEUE_NAMES.removeBg>>;
  webhooks: Queue<PayloadOf<typeof QUEUE_NAMES.webhooks>>;
  close(): Promise<void>;
}

const openQueue = <N extends QueueName>(name: N, connection: ConnectionOptions, prefix: string) =>
  new Queue<PayloadOf<N>>(name, { connection, prefix: bullPrefix(prefix) });

export function createQueues(connection: ConnectionOptions, prefix: string): Queues {
  const removeBg = openQueue(QUEUE_NAMES.removeBg, connection, prefix);
  const webhooks = openQueue(QUEUE_NAMES.webhooks, connection, prefix);
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
export function removeBgJobOptions(
  jobId: string,
  { attempts, retryDelayMs, priority }: { attempts: number; retryDelayMs: number; priority?: number },
): JobsOptions {
  return {
    jobId,
    ...(priority === undefined ? {} : { priority }),
    attempts,
    backoff: { type: 'exponential', delay: retryDelayMs, jitter: 0.5 },
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 86_400, count: 10_000 },
  };
}
