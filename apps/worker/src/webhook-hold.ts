import type { Job } from 'bullmq';
import type { WebhookPayload } from '@cutout/shared/infra';
import type { Admission, EndpointGate } from '@cutout/shared/stores';

type Held = Extract<Admission, { kind: 'wait' }>;

export interface HoldSettings {
  concurrency: number;
  leaseTtlMs: number;
}

/**
 * When a held delivery's own timer brings it back. It is normally woken sooner, by the
 * delivery that frees a place or the probe that closes the circuit; the timer matters only
 * when that worker died. Deliveries parked later wait longer, one lease time per
 * `concurrency` ahead of them, so that after such a death they return a few at a time
 * instead of all together (each would be turned away again, for nothing).
 */
export function wakeAt(
  admission: Pick<Held, 'waitMs' | 'ahead'>,
  now: number,
  { concurrency, leaseTtlMs }: HoldSettings,
): number {
  return now + admission.waitMs + leaseTtlMs * Math.floor(admission.ahead / concurrency);
}

/**
 * Moves the delivery to BullMQ's delayed set without using an attempt, then names it among
 * the endpoint's parked deliveries. In that order: whoever frees a place afterwards finds
 * it delayed and can promote it, and if a place freed before, `park` says so and it goes now.
 * The caller then throws BullMQ's DelayedError.
 */
export async function parkDelivery(
  { gate, wake }: { gate: EndpointGate; wake: Waker },
  job: Job<WebhookPayload>,
  token: string | undefined,
  endpoint: string,
  at: number,
): Promise<void> {
  await job.moveToDelayed(at, token);
  if ((await gate.park(endpoint, job.id!)) === 'free') await wake([job.id!]);
}

/** Moves parked deliveries to the queue now (WebhookOutbox.wake). */
export type Waker = (ids: readonly string[]) => Promise<void>;
