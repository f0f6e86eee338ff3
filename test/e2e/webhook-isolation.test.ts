import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { webhookMessageId } from '@cutout/shared/infra';
import { submitPhotos } from '../helpers/jobs.ts';
import { scrape, sampleValue } from '../helpers/metrics.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { callApi, eventually, queueFailedJobEvents, webhookState } from '../helpers/webhooks.ts';

/** Receivers started by a test, closed after it (first: a hanging one holds the workers' shutdown otherwise). */
function receivers() {
  const started: WebhookReceiver[] = [];
  return {
    async start(): Promise<WebhookReceiver> {
      const receiver = await startWebhookReceiver();
      started.push(receiver);
      return receiver;
    },
    close: () => Promise.all(started.splice(0).map((receiver) => receiver.close())),
  };
}

async function workerMetric(system: TestSystem, name: string, labels: Record<string, string> = {}): Promise<number> {
  const all = await Promise.all(system.workerMetricsUrls.map((url) => scrape(`${url}/metrics`)));
  return all.reduce((total, { samples }) => total + sampleValue(samples, name, labels), 0);
}

describe("one tenant's hanging receiver", () => {
  const QUEUED = 200;
  let system: TestSystem;
  const hooks = receivers();

  beforeAll(async () => {
    // Two workers of 8 slots: without a per-endpoint limit, A's hanging deliveries would take all 16 for a minute.
    system = await startSystem({
      workers: 2,
      env: { WEBHOOK_TIMEOUT: '60s', WEBHOOK_CONCURRENCY: '8', WEBHOOK_ENDPOINT_CONCURRENCY: '2' },
    });
  });
  afterEach(() => hooks.close());
  afterAll(async () => {
    await system?.close();
  });

  it("delivers another tenant's webhook while it hangs, with its deliveries still queued and none of them answered", async () => {
    const hanging = await hooks.start();
    hanging.respondWith('hang');
    const queued = await queueFailedJobEvents(system, hanging.url, QUEUED);
    // Two of A's deliveries are in flight, hanging: the endpoint's limit across both workers.
    await hanging.waitFor(2);
    const healthy = await hooks.start();
    const other = { ...system, apiKey: system.otherApiKey };

    const [jobId] = await submitPhotos(other, 1, { firstVariant: 7_000, fields: { webhook_url: healthy.url } });
    const [delivery] = await healthy.waitFor(1);

    expect(delivery!.headers['webhook-id']).toBe(webhookMessageId(jobId!, 'job.succeeded'));
    // At that moment A's receiver has had the endpoint's two deliveries and answered neither.
    expect(hanging.received).toHaveLength(2);
    const states = await Promise.all(
      queued.map(async (id) => (await system.services.jobs.get(id))?.webhook?.state ?? 'pending'),
    );
    expect(states.filter((state) => state === 'pending')).toHaveLength(QUEUED);
    const { body: log } = await callApi(system, 'GET', '/v1/webhook-deliveries?status=delivered');
    expect(log.data).toEqual([]);
  });
});

describe('an endpoint that keeps failing', () => {
  const EVENTS = 10;
  let system: TestSystem;
  const hooks = receivers();

  beforeAll(async () => {
    system = await startSystem({
      env: {
        WEBHOOK_CIRCUIT_THRESHOLD: '3',
        WEBHOOK_ENDPOINT_CONCURRENCY: '2',
        WEBHOOK_TIMEOUT: '2s',
        // About 13 s from the first attempt to the last: the outage below fits well inside it.
        WEBHOOK_RETRY_SCHEDULE: '0,300ms,600ms,900ms,1200ms,1500ms,1800ms,2100ms,2400ms,2700ms',
      },
    });
  });
  afterEach(() => hooks.close());
  afterAll(async () => {
    await system?.close();
  });

  it('opens its circuit after three 500s in a row, holds the other deliveries unsent, and delivers them all once a probe succeeds', async () => {
    const hook = await hooks.start();
    hook.respondWith(500);
    const ids = await queueFailedJobEvents(system, hook.url, EVENTS);

    const held = await eventually(
      async () => {
        const views = await Promise.all(ids.map(async (id) => (await callApi(system, 'GET', `/v1/jobs/${id}`)).body));
        const failing = views.filter((view) => view.webhook.state === 'endpoint_failing');
        return failing.length >= EVENTS - 3 ? failing : undefined;
      },
      { describe: 'deliveries held by the open circuit' },
    );

    // Held deliveries were never sent: far fewer requests than events reached the receiver.
    const neverSent = held.filter((view) => view.webhook.attempts === 0);
    expect(neverSent.length).toBeGreaterThan(0);
    expect(hook.received.length).toBeLessThan(EVENTS);
    for (const view of held)
      expect(Date.parse(view.webhook.next_attempt_at)).toBeGreaterThan(Date.parse(view.finished_at));
    const { body: endpoints } = await callApi(system, 'GET', '/v1/webhook-endpoints');
    expect(endpoints.data).toEqual([
      expect.objectContaining({
        url: hook.url,
        state: 'failing',
        next_probe_at: expect.any(String),
        disabled_at: null,
      }),
    ]);
    expect(await workerMetric(system, 'cutout_webhook_circuit_transitions_total', { transition: 'opened' })).toBe(1);
    expect(await workerMetric(system, 'cutout_webhook_endpoints_failing')).toBe(1);
    expect(
      await workerMetric(system, 'cutout_webhook_deliveries_held_total', { reason: 'endpoint_failing' }),
    ).toBeGreaterThan(0);

    hook.respondWith(204);
    for (const id of ids) await webhookState(system, id, 'delivered');

    const delivered = new Set(hook.received.map((request) => String(request.headers['webhook-id'])));
    expect(delivered).toEqual(new Set(ids.map((id) => webhookMessageId(id, 'job.failed'))));
    expect(await workerMetric(system, 'cutout_webhook_circuit_transitions_total', { transition: 'closed' })).toBe(1);
    expect(await workerMetric(system, 'cutout_webhook_endpoints_failing')).toBe(0);
    const { body: after } = await callApi(system, 'GET', '/v1/webhook-endpoints');
    expect(after.data[0]).toMatchObject({ state: 'enabled', consecutive_failures: 0, next_probe_at: null });
  });
});
