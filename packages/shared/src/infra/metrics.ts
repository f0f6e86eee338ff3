import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Queue } from 'bullmq';
import type { RateState } from '../stores/upstream-state.ts';

/**
 * Prometheus metrics of one process. Each process (and each app a test builds) gets its
 * own registry, never prom-client's global one; under `npm start` the API and the worker
 * share one, so the API's /metrics shows both.
 *
 * Labels are bounded sets (queue names, states, status codes, error codes): never a
 * tenant or job id, which would create a series per customer or per image.
 */
export interface Metrics {
  registry: Registry;
  jobsAccepted: Counter;
  jobsFinished: Counter<'status' | 'code'>;
  jobProcessingSeconds: Histogram;
  queueDepth: Gauge<'queue' | 'state'>;
  queueOldestWaitingSeconds: Gauge<'queue'>;
  upstreamCalls: Counter<'status'>;
  upstreamRateLimitPauses: Counter;
  upstreamRateLimitPauseSeconds: Counter;
  upstreamRatePerSecond: Gauge<'mode'>;
  upstreamHolds: Counter<'reason'>;
  upstreamHoldSeconds: Counter<'reason'>;
  upstreamHeld: Gauge<'reason'>;
  parkedJobs: Counter<'lot'>;
  creditsSaved: Counter;
  webhookDeliveries: Counter<'outcome' | 'attempt'>;
  webhookDeliveriesHeld: Counter<'reason'>;
  webhookCircuitTransitions: Counter<'transition'>;
  webhookEndpointsFailing: Gauge;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpRequestDurationSeconds: Histogram<'method' | 'route'>;
  /**
   * Reports these queues' depth at scrape time. The first caller wins (API and worker in
   * one process share a registry and the same queues); returns a function that stops it.
   */
  trackQueues(queues: readonly QueueStatsSource[], onError?: (error: unknown) => void): () => void;
  /** Reports how many webhook endpoints have an open circuit, counted at scrape time; the first caller wins. */
  trackFailingEndpoints(count: () => Promise<number>): () => void;
  setUpstreamRate(state: RateState): void;
}

type QueueStatsSource = Pick<Queue, 'name' | 'getJobCounts' | 'getWaiting'>;

/** The BullMQ states shown as `cutout_queue_depth{state}`. */
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;

/** From a 50 ms reused result to an image that waited out long rate-limit pauses. */
const PROCESSING_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics({ defaultMetrics = true }: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (defaultMetrics) collectDefaultMetrics({ register: registry });

  let tracked: readonly QueueStatsSource[] = [];
  let reportError: (error: unknown) => void = () => undefined;

  const queueDepth = new Gauge({
    name: 'cutout_queue_depth',
    help: 'Jobs per BullMQ queue and state, read from Redis at scrape time',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      this.reset();
      try {
        const counts = await Promise.all(tracked.map((queue) => queue.getJobCounts(...QUEUE_STATES)));
        tracked.forEach((queue, index) => {
          for (const state of QUEUE_STATES) this.set({ queue: queue.name, state }, counts[index]?.[state] ?? 0);
        });
      } catch (error) {
        // Redis down: /metrics still answers (process metrics matter most then), without stale depths.
        this.reset();
        reportError(error);
      }
    },
  });

  const queueOldestWaitingSeconds = new Gauge({
    name: 'cutout_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job waiting in each queue (0 when none waits)',
    labelNames: ['queue'] as const,
    registers,
    async collect() {
      this.reset();
      try {
        const oldest = await Promise.all(tracked.map((queue) => queue.getWaiting(0, 0)));
        const now = Date.now();
        tracked.forEach((queue, index) => {
          const job = oldest[index]?.[0];
          this.set({ queue: queue.name }, job ? Math.max(0, (now - job.timestamp) / 1000) : 0);
        });
      } catch (error) {
        this.reset();
        reportError(error);
      }
    },
  });

  let countFailing: (() => Promise<number>) | undefined;
  const webhookEndpointsFailing = new Gauge({
    name: 'cutout_webhook_endpoints_failing',
    help: 'Webhook endpoints (tenant and receiver origin) whose circuit is open, read from Redis at scrape time',
    registers,
    async collect() {
      this.reset();
      if (!countFailing) return;
      try {
        this.set(await countFailing());
      } catch (error) {
        this.reset();
        reportError(error);
      }
    },
  });

  const upstreamRatePerSecond = new Gauge({
    name: 'cutout_upstream_rate_per_second',
    help: 'ByByBG requests per second the workers allow themselves (fixed by BYBYBG_RATE_LIMIT, or discovering)',
    labelNames: ['mode'] as const,
    registers,
  });

  return {
    registry,
    jobsAccepted: new Counter({
      name: 'cutout_jobs_accepted_total',
      help: 'Jobs accepted by POST /v1/jobs',
      registers,
    }),
    jobsFinished: new Counter({
      name: 'cutout_jobs_finished_total',
      help: 'Jobs that ended, by status (succeeded, failed) and error code ("none" when succeeded)',
      labelNames: ['status', 'code'] as const,
      registers,
    }),
    jobProcessingSeconds: new Histogram({
      name: 'cutout_job_processing_seconds',
      help: "Time from a job's first start to its end, retries and rate-limit waits included",
      buckets: PROCESSING_BUCKETS,
      registers,
    }),
    queueDepth,
    queueOldestWaitingSeconds,
    upstreamCalls: new Counter({
      name: 'cutout_upstream_calls_total',
      help: 'HTTP requests to ByByBG /v1/remove-bg (key probes included), by status code or network_error',
      labelNames: ['status'] as const,
      registers,
    }),
    upstreamRateLimitPauses: new Counter({
      name: 'cutout_upstream_rate_limit_pauses_total',
      help: 'Queue-wide pauses this process started after a ByByBG 429 or an exhausted allowance',
      registers,
    }),
    upstreamRateLimitPauseSeconds: new Counter({
      name: 'cutout_upstream_rate_limit_pause_seconds_total',
      help: 'Seconds of queue-wide pause this process imposed (extensions of a running pause add only the extra time)',
      registers,
    }),
    upstreamRatePerSecond,
    upstreamHolds: new Counter({
      name: 'cutout_upstream_holds_total',
      help: 'Queue-wide holds this process started, by reason (upstream_unauthorized: every key refused; upstream_out_of_credit: 402)',
      labelNames: ['reason'] as const,
      registers,
    }),
    upstreamHoldSeconds: new Counter({
      name: 'cutout_upstream_hold_seconds_total',
      help: 'Length of the queue-wide holds this process ended, in seconds, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    upstreamHeld: new Gauge({
      name: 'cutout_upstream_held',
      help: '1 while a queue-wide hold of this reason is in force (read from Redis about once a second), else 0',
      labelNames: ['reason'] as const,
      registers,
    }),
    parkedJobs: new Counter({
      name: 'cutout_parked_jobs_total',
      help: "Jobs set aside until they may call ByByBG, by lot: budget (their tenant's budget of upstream calls is used up), credit (the account is out of credit past BYBYBG_OUT_OF_CREDIT_BUDGET)",
      labelNames: ['lot'] as const,
      registers,
    }),
    creditsSaved: new Counter({
      name: 'cutout_credits_saved_total',
      help: 'Jobs that reused the result of an identical image instead of calling ByByBG',
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'cutout_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome (delivered, retrying, failed) and attempt number',
      labelNames: ['outcome', 'attempt'] as const,
      registers,
    }),
    webhookDeliveriesHeld: new Counter({
      name: 'cutout_webhook_deliveries_held_total',
      help: 'Webhook deliveries held back without an attempt: endpoint_busy (its concurrency taken), endpoint_failing (circuit open)',
      labelNames: ['reason'] as const,
      registers,
    }),
    webhookCircuitTransitions: new Counter({
      name: 'cutout_webhook_circuit_transitions_total',
      help: 'Webhook endpoint circuits that opened, reopened after a failed probe, or closed',
      labelNames: ['transition'] as const,
      registers,
    }),
    webhookEndpointsFailing,
    httpRequests: new Counter({
      name: 'cutout_http_requests_total',
      help: 'HTTP requests answered by the API, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    httpRequestDurationSeconds: new Histogram({
      name: 'cutout_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method and route pattern',
      labelNames: ['method', 'route'] as const,
      buckets: HTTP_BUCKETS,
      registers,
    }),
    trackQueues(queues, onError) {
      if (tracked.length > 0) return () => undefined;
      tracked = queues;
      if (onError) reportError = onError;
      return () => {
        if (tracked === queues) tracked = [];
      };
    },
    trackFailingEndpoints(count) {
      if (countFailing) return () => undefined;
      countFailing = count;
      return () => {
        if (countFailing === count) countFailing = undefined;
      };
    },
    setUpstreamRate(state) {
      // One series at a time: the mode that applies now.
      upstreamRatePerSecond.reset();
      upstreamRatePerSecond.set({ mode: state.mode }, state.ratePerSecond);
    },
  };
}
