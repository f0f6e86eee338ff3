import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Dispatcher } from 'undici';
import type { Logger, WebhookPayload } from '@cutout/shared/infra';
import {
  deliveryFieldsOf,
  endpointIdOf,
  type Admission,
  type EndpointGate,
  type FairScheduler,
  type GoneEndpoints,
  type Settled,
  type TenantStore,
  type WebhookAttemptLog,
  type WebhookDelivery,
} from '@cutout/shared/stores';
import { signWebhook } from '../webhook-signing.ts';
import { webhookBackoff } from '../backoff.ts';
import { outcomeOfError, outcomeOfResponse, type AttemptOutcome } from '../webhook-verdicts.ts';
import { parkDelivery, wakeAt, type Waker } from '../webhook-hold.ts';
import { postWebhook } from '../webhook-sender.ts';
import { webhookTarget, type WebhookEventDeps, type WebhookTarget } from './webhook-event.ts';

export interface DeliverWebhookDeps extends WebhookEventDeps {
  tenants: TenantStore;
  attempts: WebhookAttemptLog;
  goneEndpoints: GoneEndpoints;
  gate: EndpointGate;
  /** The webhooks queue's fair scheduler: starting a delivery moves its served position. */
  fair: FairScheduler;
  wake: Waker;
  retryScheduleMs: readonly number[];
  /** Deliveries in flight per endpoint, and how long a lease lasts (to spread held deliveries' timers). */
  endpointConcurrency: number;
  leaseTtlMs: number;
  timeoutMs: number;
  /** The SSRF-guarded agent (createGuardedAgent): required, so no delivery can bypass the guard. */
  dispatcher: Dispatcher;
  /** For metrics: a delivery held back, and a circuit that changed. */
  observe?: {
    held?(reason: 'endpoint_busy' | 'endpoint_failing'): void;
    circuit?(transition: NonNullable<Settled['transition']>): void;
  };
  random?: () => number;
  log: Logger;
}

/** A failed delivery attempt; `delayMs` is when the next attempt is due, as the job shows it (the backoff strategy uses it). */
export class DeliveryError extends Error {
  readonly retryAfterMs?: number;
  readonly delayMs?: number;
  constructor(message: string, retryAfterMs?: number, delayMs?: number) {
    super(message);
    this.name = 'DeliveryError';
    this.retryAfterMs = retryAfterMs;
    this.delayMs = delayMs;
  }
}

type Held = Extract<Admission, { kind: 'wait' }>;

/**
 * Sends one event, signed with the tenant's secrets; the `webhook-id` is the same on every
 * attempt and every redelivery. The endpoint's gate decides first whether it may go now:
 * a delivery to an endpoint whose places are taken, or whose circuit is open, waits in the
 * delayed set without using an attempt and without holding a worker slot. Each attempt is
 * logged on the job, in its attempt list and in the tenant's delivery log.
 */
export function makeDeliverWebhookProcessor(deps: DeliverWebhookDeps) {
  const { tenants, attempts, log } = deps;
  const backoff = webhookBackoff(deps.retryScheduleMs, deps.random);
  // A delivery that never gets through an open circuit gives up when its whole schedule would have run out.
  const lifetimeMs = deps.retryScheduleMs.reduce((total, delay) => total + delay, 0);
  const holdSettings = { concurrency: deps.endpointConcurrency, leaseTtlMs: deps.leaseTtlMs };

  /** Never throws: every way an attempt can end is an outcome, plus the cause when there was no answer. */
  async function attemptDelivery(
    url: string,
    body: string,
    headers: Record<string, string>,
  ): Promise<AttemptOutcome & { cause?: unknown }> {
    try {
      return outcomeOfResponse(
        await postWebhook({ url, body, headers, timeoutMs: deps.timeoutMs, dispatcher: deps.dispatcher }),
      );
    } catch (error) {
      return { ...outcomeOfError(error, deps.timeoutMs), cause: error };
    }
  }

  /** The delivery state, on the job (batches have none) and in the delivery log. */
  async function show(payload: WebhookPayload, target: WebhookTarget, delivery: WebhookDelivery): Promise<void> {
    await Promise.all([
      payload.batchId ? undefined : deps.jobs.setWebhook(payload.jobId, delivery),
      deps.deliveries.write({ ...payload, url: target.url }, deliveryFieldsOf(delivery)),
    ]);
  }

  async function hold(
    job: Job<WebhookPayload>,
    token: string | undefined,
    target: WebhookTarget,
    endpoint: string,
    admission: Held,
  ): Promise<never> {
    const now = Date.now();
    const current: WebhookDelivery = { ...(target.current ?? { state: 'pending', attempts: job.attemptsMade }) };
    let at = wakeAt(admission, now, holdSettings);
    if (admission.reason === 'failing') {
      const deadline = job.timestamp + lifetimeMs;
      if (now >= deadline) {
        const error =
          'endpoint failing: its circuit stayed open for the whole retry schedule, so this delivery was not sent';
        await show(job.data, target, { ...current, state: 'failed', lastError: error, nextAttemptAt: undefined });
        log.info({ job_id: job.data.jobId, messageId: job.data.messageId }, 'webhook given up: endpoint failing');
        throw new UnrecoverableError(error);
      }
      at = Math.min(at, deadline);
    }
    await parkDelivery(deps, job, token, endpoint, at);
    deps.observe?.held?.(admission.reason === 'busy' ? 'endpoint_busy' : 'endpoint_failing');
    // A delivery waiting its turn stays `pending`; one held by an open circuit says so, and until when.
    if (admission.reason === 'failing')
      await show(job.data, target, {
        ...current,
        state: 'endpoint_failing',
        nextAttemptAt: new Date(at).toISOString(),
      });
    throw new DelayedError();
  }

  return async function deliverWebhook(job: Job<WebhookPayload>, token?: string): Promise<void> {
    const { messageId, type, jobId, tenantId } = job.data;
    const target = await webhookTarget(deps, job.data);
    if (!target) {
      await deps.deliveries.forget(tenantId, messageId);
      return log.warn({ job_id: jobId, messageId }, 'webhook dropped: record expired');
    }
    const attempt = job.attemptsMade + 1;
    const lastScheduled = attempt >= (job.opts.attempts ?? 1);
    const attemptLog = log.child({ job_id: jobId, messageId, attempt });

    // Read together (one round trip): whether the endpoint answered 410, and the secrets to sign with.
    const [goneSince, secrets] = await Promise.all([
      deps.goneEndpoints.goneSince(tenantId, target.url),
      tenants.webhookSecrets(tenantId),
    ]);
    const endpoint = endpointIdOf(tenantId, target.url);
    let lease: string | undefined;
    if (!goneSince) {
      const [admission] = await Promise.all([
        deps.gate.admit(endpoint, job.id!),
        job.data.slot === undefined ? undefined : deps.fair.served(job.data.slot).catch(() => undefined),
      ]);
      if (admission.kind === 'wait') return hold(job, token, target, endpoint, admission);
      lease = admission.token;
    }

    const started = Date.now();
    let outcome: AttemptOutcome & { cause?: unknown };
    try {
      const { timestamp, data } = await target.body();
      const body = JSON.stringify({ type, timestamp, data });
      const headers = signWebhook(secrets, messageId, new Date(), body);
      outcome = goneSince
        ? {
            verdict: 'give_up',
            statusCode: null,
            health: 'unknown',
            error: `endpoint disabled: it answered 410 Gone at ${goneSince}; enable it again (POST /v1/webhook-endpoints/enable) or redeliver`,
          }
        : await attemptDelivery(target.url, body, headers);
    } catch (error) {
      // Nothing was sent (the event could not be built): free the place, learn nothing about the endpoint.
      if (lease)
        await deps.gate.settle(endpoint, lease, 'unknown').then(
          ({ wake }) => deps.wake(wake),
          () => undefined,
        );
      throw error;
    }
    if (outcome.statusCode === 410) await deps.goneEndpoints.markGone(tenantId, target.url);
    const durationMs = Date.now() - started;

    const retrying = outcome.verdict === 'retry' && !lastScheduled;
    const attemptedAt = new Date(started).toISOString();
    // The attempt is logged while the endpoint's place is given back (one round trip), and
    // before the new state is shown: whoever sees the state finds the attempt that led to it.
    const [settled] = await Promise.all([
      lease ? deps.gate.settle(endpoint, lease, outcome.health, retrying ? job.id : undefined) : null,
      attempts.record(jobId, {
        attemptedAt,
        eventType: type,
        webhookId: messageId,
        statusCode: outcome.statusCode,
        durationMs,
        error: outcome.error,
      }),
    ]);
    if (settled) {
      await deps.wake(settled.wake);
      if (settled.transition) {
        deps.observe?.circuit?.(settled.transition);
        attemptLog.info(
          { transition: settled.transition, reopensInMs: settled.open?.forMs },
          'webhook endpoint circuit changed',
        );
      }
    }
    let delayMs: number | undefined;
    if (retrying) {
      delayMs = backoff(attempt, outcome);
      // An open circuit: no sooner than its next probe (a probe that succeeds wakes this delivery
      // earlier), and no later than the end of its schedule, when it gives up if still held.
      if (settled?.open) {
        const untilProbe = wakeAt({ waitMs: settled.open.forMs, ahead: settled.open.ahead }, 0, holdSettings);
        delayMs = Math.max(delayMs, Math.min(untilProbe, job.timestamp + lifetimeMs - Date.now()));
      }
    }

    const now = Date.now();
    const state: WebhookDelivery['state'] =
      outcome.verdict === 'delivered'
        ? 'delivered'
        : !retrying
          ? 'failed'
          : settled?.open
            ? 'endpoint_failing'
            : 'pending';
    await show(job.data, target, {
      state,
      attempts: attempt,
      lastStatusCode: outcome.statusCode ?? undefined,
      lastError: outcome.error ?? undefined,
      lastAttemptAt: attemptedAt,
      nextAttemptAt: delayMs === undefined ? undefined : new Date(now + delayMs).toISOString(),
      deliveredAt: outcome.verdict === 'delivered' ? new Date(now).toISOString() : undefined,
    });
    // `err` (the network error's code, the guard's refusal) is for operators; clients see `outcome.error`.
    // Neither names a resolved address: the guard logs that at debug level only.
    attemptLog.info(
      { statusCode: outcome.statusCode, ms: durationMs, outcome: outcome.verdict, state, err: outcome.cause },
      'webhook attempt',
    );

    if (outcome.verdict === 'give_up') throw new UnrecoverableError(outcome.error ?? 'delivery given up');
    if (outcome.verdict === 'retry')
      throw new DeliveryError(outcome.error ?? 'delivery failed', outcome.retryAfterMs, delayMs);
  };
}
