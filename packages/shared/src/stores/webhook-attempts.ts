import type { Redis } from 'ioredis';
import type { WebhookEventType } from '../infra/queues.ts';

/** One delivery attempt, as `GET /v1/jobs/:id/webhook-attempts` shows it. */
export interface WebhookAttempt {
  attemptedAt: string;
  eventType: WebhookEventType;
  webhookId: string;
  /** The receiver's status, or null when no answer came (refused, timed out, not allowed). */
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

export interface WebhookAttemptLog {
  record(jobId: string, attempt: WebhookAttempt): Promise<void>;
  /** The job's most recent attempts, newest first. */
  list(jobId: string): Promise<WebhookAttempt[]>;
}

/** Enough to follow a full retry schedule and a few redeliveries; older attempts are dropped. */
export const MAX_WEBHOOK_ATTEMPTS_KEPT = 50;

/**
 * A capped list per job beside its record (`<prefix>:job:<id>:webhook-attempts`). Each push
 * renews its TTL to the job retention: attempts happen after the job ended, so the list
 * lives about as long as the record it explains.
 */
export function makeWebhookAttemptLog({
  redis,
  prefix,
  retentionMs,
}: {
  redis: Redis;
  prefix: string;
  retentionMs: number;
}): WebhookAttemptLog {
  const listKey = (jobId: string) => `${prefix}:job:${jobId}:webhook-attempts`;

  return {
    async record(jobId, attempt) {
      await redis
        .multi()
        .lpush(listKey(jobId), JSON.stringify(attempt))
        .ltrim(listKey(jobId), 0, MAX_WEBHOOK_ATTEMPTS_KEPT - 1)
        .pexpire(listKey(jobId), retentionMs)
        .exec();
    },
    async list(jobId) {
      const entries = await redis.lrange(listKey(jobId), 0, MAX_WEBHOOK_ATTEMPTS_KEPT - 1);
      return entries.map((entry) => JSON.parse(entry) as WebhookAttempt);
    },
  };
}
