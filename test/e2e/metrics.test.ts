import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { getJob, setFaults, settle, submitPhoto } from '../helpers/jobs.ts';
import { scrape, sampleValue, type Sample } from '../helpers/metrics.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { waitUntil } from '../faults/stack.ts';

/**
 * What an operator's dashboards rely on: after a known sequence of jobs the counters on
 * the API's and the worker's /metrics moved by exactly that much, and no series is named
 * after a tenant or a job.
 */

const API_COUNTERS = {
  accepted: ['cutout_jobs_accepted_total', {}],
  posted: ['cutout_http_requests_total', { method: 'POST', route: '/v1/jobs', status: '202' }],
} as const;

const WORKER_COUNTERS = {
  succeeded: ['cutout_jobs_finished_total', { status: 'succeeded', code: 'none' }],
  failedBadResponse: ['cutout_jobs_finished_total', { status: 'failed', code: 'upstream_bad_response' }],
  finished: ['cutout_jobs_finished_total', {}],
  processed: ['cutout_job_processing_seconds_count', {}],
  upstream200: ['cutout_upstream_calls_total', { status: '200' }],
  upstreamAll: ['cutout_upstream_calls_total', {}],
  creditsSaved: ['cutout_credits_saved_total', {}],
  delivered: ['cutout_webhook_deliveries_total', { outcome: 'delivered' }],
  deliveryAttempts: ['cutout_webhook_deliveries_total', {}],
} as const;

type Counters = Record<string, readonly [string, Record<string, string>]>;

function read(samples: Sample[], counters: Counters): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counters).map(([key, [name, labels]]) => [key, sampleValue(samples, name, labels)]),
  );
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - (before[key] ?? 0)]));
}

describe('metrics', () => {
  let system: TestSystem;
  let receiver: WebhookReceiver;
  let workerMetricsUrl: string;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    system = await startSystem({ faults: { latencyMs: 50 } });
    workerMetricsUrl = `${system.workerMetricsUrls[0]}/metrics`;
  });
  afterAll(async () => {
    await system?.close();
    await receiver?.close();
  });

  it('counts accepted, succeeded, failed and deduplicated jobs, upstream calls and webhooks exactly', async () => {
    const apiBefore = read((await scrape(`${system.apiUrl}/metrics`)).samples, API_COUNTERS);
    const workerBefore = read((await scrape(workerMetricsUrl)).samples, WORKER_COUNTERS);
    const fields = { webhook_url: receiver.url };

    const first = await productImage('png', PRODUCT_SHOT, 1);
    const ids = [
      await submitPhoto(system, first, fields),
      await submitPhoto(system, await productImage('png', PRODUCT_SHOT, 2), fields),
    ];
    expect((await settle(system, ids)).map((view) => view.status)).toEqual(['succeeded', 'succeeded']);

    await setFaults(system, { responseMode: 'bad' });
    try {
      ids.push(await submitPhoto(system, await productImage('png', PRODUCT_SHOT, 3), fields));
      expect((await settle(system, ids.slice(2)))[0]).toMatchObject({
        status: 'failed',
        error: { code: 'upstream_bad_response' },
      });
    } finally {
      await setFaults(system, { responseMode: 'image' });
    }

    // The same bytes again: the stored result is reused and ByByBG is not paid twice.
    ids.push(await submitPhoto(system, first, fields));
    expect((await settle(system, ids.slice(3)))[0]).toMatchObject({ status: 'succeeded' });
    await receiver.waitFor(4);

    const expectedWorker = {
      succeeded: 3,
      failedBadResponse: 1,
      finished: 4,
      processed: 4,
      upstream200: 3,
      upstreamAll: 3,
      creditsSaved: 1,
      delivered: 4,
      deliveryAttempts: 4,
    };
    // Outcomes are counted from BullMQ's events, a moment after the record changed.
    let workerDelta: Record<string, number> = {};
    await waitUntil(
      async () => {
        workerDelta = delta(read((await scrape(workerMetricsUrl)).samples, WORKER_COUNTERS), workerBefore);
        return workerDelta.finished! >= 4 && workerDelta.deliveryAttempts! >= 4 ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 50, describe: () => JSON.stringify(workerDelta) },
    );
    expect(workerDelta).toEqual(expectedWorker);

    const api = await scrape(`${system.apiUrl}/metrics`);
    expect(api.contentType).toMatch(/^text\/plain/);
    expect(delta(read(api.samples, API_COUNTERS), apiBefore)).toEqual({ accepted: 4, posted: 4 });
    // Polling shows up under the route pattern, never under a job's own URL.
    expect(
      sampleValue(api.samples, 'cutout_http_requests_total', { method: 'GET', route: '/v1/jobs/:id', status: '200' }),
    ).toBeGreaterThan(0);

    const workerSamples = (await scrape(workerMetricsUrl)).samples;
    expect(
      workerSamples.some(
        (sample) => sample.name === 'cutout_upstream_rate_per_second' && sample.labels.mode === 'discovering',
      ),
    ).toBe(true);
    expect(workerSamples.some((sample) => sample.name === 'process_cpu_user_seconds_total')).toBe(true);
    for (const queue of ['remove-bg', 'webhooks']) {
      expect(
        api.samples.some(
          (sample) =>
            sample.name === 'cutout_queue_depth' && sample.labels.queue === queue && sample.labels.state === 'waiting',
        ),
      ).toBe(true);
      expect(
        api.samples.some(
          (sample) => sample.name === 'cutout_queue_oldest_waiting_seconds' && sample.labels.queue === queue,
        ),
      ).toBe(true);
    }

    const labelValues = [...api.samples, ...workerSamples].flatMap((sample) => Object.values(sample.labels));
    const forbidden = [...ids, system.tenantId, 'globex'];
    expect(
      labelValues.filter((value) => forbidden.some((id) => value.includes(id)) || /job_[0-9A-Za-z]{20}/.test(value)),
    ).toEqual([]);
    expect((await getJob(system, ids[3]!)).status).toBe('succeeded');
  });
});
