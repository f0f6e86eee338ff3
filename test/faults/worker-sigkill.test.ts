import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Webhook } from 'standardwebhooks';
import { resultKey } from '@cutout/shared';
import { startApiProcess, startWorkerProcess } from '../helpers/processes.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { countBy, distinctPhotos, getJobs, startFaultStack, statusCounts, submitAll, waitUntil, type FaultStack, type Json } from './stack.ts';

/**
 * A worker that dies without warning (OOM killer, lost machine) must cost nothing but
 * time: another worker takes its jobs over once their locks expire, every job ends
 * `succeeded` with its result in S3, and every client gets its webhook — with one
 * `webhook-id` per event however often it is delivered, so receivers can deduplicate.
 */

const JOBS = 40;
const CONCURRENCY = 4;

interface Delivery { webhookId: string; event: Json }

describe('a worker killed with SIGKILL', () => {
  let stack: FaultStack;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    // Slow enough that the killed worker is surely in the middle of ByByBG calls.
    stack = await startFaultStack({ latencyMs: 200 });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  }, 60_000);

  it('loses no job: the other worker finishes them and every webhook arrives with one id per event', async () => {
    const env = stack.env({
      WORKER_CONCURRENCY: String(CONCURRENCY),
      WORKER_LOCK_DURATION: '2s',
      WORKER_STALLED_INTERVAL: '1s',
      WEBHOOK_RETRY_SCHEDULE: '0,50ms,100ms,200ms',
    });
    const [api, victim, survivor] = await Promise.all([
      startApiProcess(env),
      startWorkerProcess(env, 'worker-1'),
      startWorkerProcess(env, 'worker-2'),
    ]);
    const ids = await submitAll(api.url, stack.apiKey, await distinctPhotos(JOBS), { webhook_url: receiver.url });

    // Kill once ≥ 5 jobs have succeeded (their job.succeeded webhooks arrived) while more
    // calls are in flight than one worker may have, so both workers are mid-call.
    let announced = 0;
    let inFlight = 0;
    await waitUntil(async () => {
      announced = new Set(receiver.received.map(({ body }) => (JSON.parse(body) as Json).data?.id)).size;
      inFlight = (await stack.emulatorStats()).inFlight;
      return announced >= 5 && inFlight > CONCURRENCY ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 10, describe: () => `never ≥ 5 succeeded with both workers busy (last: ${announced} succeeded, ${inFlight} in flight)` });

    victim.kill('SIGKILL');
    const death = await victim.waitForExit(30_000);
    // tsx reports its child's death by SIGKILL as 128 + 9.
    expect(death.code === 137 || death.signal === 'SIGKILL', JSON.stringify(death)).toBe(true);

    let views: Json[] = [];
    await waitUntil(async () => {
      views = await getJobs(api.url, stack.apiKey, ids);
      return views.every((view) => view.status === 'succeeded') ? true : undefined;
    }, { timeoutMs: 120_000, intervalMs: 100, describe: () => `jobs not all succeeded: ${JSON.stringify(statusCounts(views))}` });
    expect(survivor.done).toBe(false);

    // The jobs the killed worker had in flight were found stalled and run again by the survivor.
    const stalled = Object.values(await stack.stalledCounts(ids)).filter((count) => count > 0);
    expect(stalled.length).toBeGreaterThan(0);
    for (const view of views) {
      const stored = await stack.storage.head(resultKey(stack.tenantId, view.id));
      expect(stored, `result of ${view.id}`).toMatchObject({ bytes: view.result.bytes, contentType: 'image/png' });
    }

    // Every webhook job ends completed, including those the killed worker was delivering
    // when it died: the survivor delivers them again once they count as stalled.
    let webhookJobs: Record<string, number> = {};
    await waitUntil(async () => {
      webhookJobs = await stack.queueCounts('webhooks');
      return webhookJobs.completed === JOBS && webhookJobs.active === 0 ? true : undefined;
    }, { timeoutMs: 150_000, intervalMs: 250, describe: () => `webhook jobs: ${JSON.stringify(webhookJobs)}` });
    expect(webhookJobs).toMatchObject({ waiting: 0, delayed: 0, failed: 0 });
    views = await getJobs(api.url, stack.apiKey, ids);
    expect(countBy(views.map((view) => view.webhook?.state))).toEqual({ delivered: JOBS });

    const secret = await webhookSecret(api.url, stack.apiKey);
    const byJob = groupByJob(receiver, secret);

    expect([...byJob.keys()].sort()).toEqual([...ids].sort());
    for (const id of ids) {
      const deliveries = byJob.get(id)!;
      expect(deliveries.map((delivery) => delivery.event.type), id).toEqual(deliveries.map(() => 'job.succeeded'));
      expect(new Set(deliveries.map((delivery) => delivery.webhookId)).size, `distinct webhook-ids of ${id}`).toBe(1);
      expect(deliveries[0]!.event.data.status).toBe('succeeded');
    }
    expect(new Set([...byJob.values()].map((deliveries) => deliveries[0]!.webhookId)).size).toBe(JOBS);
  }, 300_000);
});

async function webhookSecret(apiUrl: string, apiKey: string): Promise<string> {
  const response = await request(`${apiUrl}/v1/account`, { headers: { 'x-api-key': apiKey } });
  return String(((await response.body.json()) as Json).webhook_secret);
}

/** Every delivery so far, verified with the tenant's secret, grouped by the job it is about. */
function groupByJob(receiver: WebhookReceiver, secret: string): Map<string, Delivery[]> {
  const verifier = new Webhook(secret);
  const byJob = new Map<string, Delivery[]>();
  for (const { headers, body } of receiver.received) {
    const webhookId = String(headers['webhook-id']);
    const event = verifier.verify(body, {
      'webhook-id': webhookId,
      'webhook-timestamp': String(headers['webhook-timestamp']),
      'webhook-signature': String(headers['webhook-signature']),
    }) as Json;
    const jobId = String(event.data.id);
    byJob.set(jobId, [...(byJob.get(jobId) ?? []), { webhookId, event }]);
  }
  return byJob;
}
