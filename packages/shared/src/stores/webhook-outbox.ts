import type { JobsOptions, Queue } from 'bullmq';
import { priorityOfSlot, type FairScheduler } from './fairness.ts';
import { randomBase62 } from '../infra/ids.ts';
import type { WebhookPayload } from '../infra/queues.ts';
import type { WebhookDeliveryLog } from './webhook-deliveries.ts';

/**
 * The one way events enter the `webhooks` queue.
 *
 * - **Fair order**: each delivery gets a slot in its tenant's flow of a fair scheduler of
 *   its own (fairness.ts), and the slot is its BullMQ priority, so a tenant whose thousands
 *   of deliveries wait (a hanging receiver, a recovery) does not put another tenant's next
 *   event behind them.
 * - **One pending delivery per event**: every delivery carries BullMQ's deduplication id =
 *   the event's message id, held until the delivery completes or fails for good. Asking for
 *   a redelivery while one is pending queues nothing; a pending delivery waiting for its
 *   next attempt is moved to now instead (`reschedule`).
 * - **The delivery log** gets the event's entry (webhook-deliveries.ts).
 */
export interface WebhookOutbox {
  /** The event's first delivery; announcing the same event again (at-least-once processing) is a no-op. */
  announce(event: WebhookPayload): Promise<void>;
  /**
   * A new delivery of the event with the same message id, unless one is pending: then that
   * one is attempted now (if it was waiting) and nothing is queued. `beforeQueue` runs only
   * when a new delivery is about to be queued (e.g. to show the job's webhook as pending).
   */
  redeliver(event: WebhookPayload, options?: { beforeQueue?: () => Promise<void> }): Promise<{ queued: boolean }>;
  /** Redelivers events of one tenant that have no pending delivery (failed ones), in one go; returns how many were queued. */
  redeliverMany(events: readonly WebhookPayload[]): Promise<number>;
  /** Moves held deliveries (named by the endpoint gate) from the delayed set to the queue now; others are skipped. */
  wake(ids: readonly string[]): Promise<void>;
}

export interface OutboxDeps {
  queue: Queue<WebhookPayload>;
  /** A fair scheduler of the webhooks queue's own (not the remove-bg one). */
  fair: FairScheduler;
  deliveries: WebhookDeliveryLog;
  /** Attempts per delivery (config.webhooks.maxAttempts). */
  maxAttempts: number;
}

/**
 * The BullMQ id of a redelivery: unique, so BullMQ does not take it for the first delivery's
 * job. No ':' in it: BullMQ reserves colons in custom ids.
 */
const redeliveryJobId = (messageId: string): string => `${messageId}-redeliver-${randomBase62(12)}`;

/** A redelivery starts over: attempts from 0; the last status stays visible until its first attempt. */
const PENDING_AGAIN = { state: 'pending', attempts: 0, nextAttemptAt: null, deliveredAt: null } as const;

export function makeWebhookOutbox({ queue, fair, deliveries, maxAttempts }: OutboxDeps): WebhookOutbox {
  const options = (jobId: string, messageId: string, slot: number, reschedule: boolean): JobsOptions => ({
    jobId,
    priority: priorityOfSlot(slot),
    attempts: maxAttempts,
    backoff: { type: 'webhook-schedule' },
    deduplication: reschedule ? { id: messageId, reschedule: true } : { id: messageId },
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  });

  return {
    async announce(event) {
      const slot = await fair.reserve(event.tenantId, 1);
      // The BullMQ id is the message id: a job that ends twice adds its event once.
      await queue.add(event.type, { ...event, slot }, options(event.messageId, event.messageId, slot, false));
      // After the add, and only for a new entry, so an attempt already made is never overwritten.
      await deliveries.write(event, { state: 'pending', attempts: 0 }, { ifNew: true });
    },
    async redeliver(event, { beforeQueue } = {}) {
      const holder = await queue.getDeduplicationJobId(event.messageId);
      if (!holder) {
        // Pending before queueing, so a fast first attempt's outcome is never overwritten by it.
        await beforeQueue?.();
        await deliveries.write(event, PENDING_AGAIN);
      }
      const slot = await fair.reserve(event.tenantId, 1);
      const jobId = redeliveryJobId(event.messageId);
      const job = await queue.add(event.type, { ...event, slot }, options(jobId, event.messageId, slot, true));
      const queued = job.id === jobId;
      // A holder that was stale (its job gone) was replaced by this delivery.
      if (queued && holder) await deliveries.write(event, PENDING_AGAIN);
      return { queued };
    },
    async redeliverMany(events) {
      if (events.length === 0) return 0;
      await Promise.all(events.map((event) => deliveries.write(event, PENDING_AGAIN)));
      const first = await fair.reserve(events[0]!.tenantId, events.length);
      const ids = events.map((event) => redeliveryJobId(event.messageId));
      const jobs = await queue.addBulk(
        events.map((event, i) => ({
          name: event.type,
          data: { ...event, slot: first + i },
          opts: options(ids[i]!, event.messageId, first + i, true),
        })),
      );
      return jobs.filter((job, i) => job.id === ids[i]).length;
    },
    async wake(ids) {
      // A named delivery may have left the delayed set meanwhile (its timer fired, it was removed): nothing to do then.
      await Promise.all(ids.map((id) => queue.backend.promote(id).catch(() => undefined)));
    },
  };
}
