import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Webhook } from 'standardwebhooks';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { resultKey } from '@cutout/shared/infra';
import { startApiProcess, startWorkerProcess } from '../helpers/processes.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import {
  countBy,
  distinctPhotos,
  printSummary,
  startFaultStack,
  submitAll,
  waitForJobsToEnd,
  waitUntil,
  type FaultStack,
  type Json,
} from './stack.ts';

/**
 * A worker that dies without warning (OOM killer, lost machine) must cost nothing but
 * time: another worker takes its jobs over once their locks expire, every job ends
 * `succeeded` with its result in S3, and every client gets its webhook — with one
 * `webhook-id` per event however often it is delivered, so receivers can deduplicate.
 */

const JOBS = 500;
const CONCURRENCY = 4;
/** Killed once this many jobs have announced success: well inside the run. */
const KILL_AFTER = 100;

interface Delivery {
  webhookId: string;
  event: Json;
}

describe('a worker killed with SIGKILL', () => {
  let stack: FaultStack;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    // Every call takes a while, so the killed worker is surely in the middle of ByByBG calls;
    // one fixed result keeps 500 cutouts cheap.
    stack = await startFaultStack({ latencyMs: 40, fixedResult: true });
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
    const api = await startApiProcess(env);
    // Every job is accepted before the workers start, so both have a full queue to work on.
    const ids = await submitAll(api.url, stack.apiKey, await distinctPhotos(JOBS), { webhook_url: receiver.url });
    const [victim, survivor] = await Promise.all([
      startWorkerProcess(env, 'worker-1'),
      startWorkerProcess(env, 'worker-2'),
    ]);

    // Kill once KILL_AFTER jobs have succeeded (their job.succeeded webhooks arrived) while more
    // calls are in flight than one worker may have, so both workers are mid-call.
    let announced = 0;
    let inFlight = 0;
    await waitUntil(
      async () => {
        announced = new Set(receiver.received.map(({ body }) => (JSON.parse(body) as Json).data?.id)).size;
        inFlight = (await stack.emulatorStats()).inFlight;
        return announced >= KILL_AFTER && inFlight > CONCURRENCY ? true : undefined;
      },
      {
        timeoutMs: 60_000,
        intervalMs: 5,
        describe: () =>
          `never ≥ ${KILL_AFTER} succeeded with both workers busy (last: ${announced} succeeded, ${inFlight} in flight)`,
      },
    );

    victim.kill('SIGKILL');
    const killedAt = Date.now();
    const death = await victim.waitForExit(30_000);
    expect(death.code === 137 || death.signal === 'SIGKILL', JSON.stringify(death)).toBe(true);

    let views = await waitForJobsToEnd(api.url, stack.apiKey, ids, 180_000);
    const recoveryMs = Date.now() - killedAt;
    expect(countBy(views.map((view) => view.status))).toEqual({ succeeded: JOBS });
    expect(survivor.done).toBe(false);

    // The jobs the killed worker had in flight were found stalled and run again by the survivor.
    const stalled = Object.values(await stack.stalledCounts(ids)).filter((count) => count > 0);
    expect(stalled.length).toBeGreaterThan(0);
    for (const view of views) {
      const stored = await stack.storage.head(resultKey(stack.tenantId, view.id));
      expect(stored, `result of ${view.id}`).toMatchObject({ bytes: view.result.bytes, contentType: 'image/png' });
    }
    // Exactly one result object per job: a job run twice overwrote its own key, nothing else.
    const resultKeys = await listKeys(stack, `results/${stack.tenantId}/`);
    expect(resultKeys.length).toBe(JOBS);
    expect(new Set(resultKeys)).toEqual(new Set(ids.map((id) => resultKey(stack.tenantId, id))));

    // Every webhook job ends completed, including those the killed worker was delivering
    // when it died: the survivor delivers them again once they count as stalled.
    let webhookJobs: Record<string, number> = {};
    await waitUntil(
      async () => {
        webhookJobs = await stack.queueCounts('webhooks');
        return webhookJobs.completed === JOBS && webhookJobs.active === 0 ? true : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 250, describe: () => `webhook jobs: ${JSON.stringify(webhookJobs)}` },
    );
    expect(webhookJobs).toMatchObject({ waiting: 0, delayed: 0, failed: 0 });
    views = await waitForJobsToEnd(api.url, stack.apiKey, ids, 30_000);
    expect(countBy(views.map((view) => view.webhook?.state))).toEqual({ delivered: JOBS });

    const secret = await webhookSecret(api.url, stack.apiKey);
    const byJob = groupByJob(receiver, secret);

    expect([...byJob.keys()].sort()).toEqual([...ids].sort());
    for (const id of ids) {
      const deliveries = byJob.get(id)!;
      expect(
        deliveries.map((delivery) => delivery.event.type),
        id,
      ).toEqual(deliveries.map(() => 'job.succeeded'));
      expect(new Set(deliveries.map((delivery) => delivery.webhookId)).size, `distinct webhook-ids of ${id}`).toBe(1);
      expect(deliveries[0]!.event.data.status).toBe('succeeded');
    }
    expect(new Set([...byJob.values()].map((deliveries) => deliveries[0]!.webhookId)).size).toBe(JOBS);

    const duplicateDeliveries = receiver.received.length - JOBS;
    printSummary('worker-sigkill', {
      accepted: ids.length,
      succeeded: views.filter((view) => view.status === 'succeeded').length,
      lost: 0,
      stalled_jobs: stalled.length,
      duplicate_webhooks: duplicateDeliveries,
      webhook_ids_per_job: 1,
      recovery_ms: recoveryMs,
    });
  }, 300_000);
});

/** Every key under `prefix` in the stack's bucket. */
async function listKeys(stack: FaultStack, prefix: string): Promise<string[]> {
  const client = new S3Client({
    endpoint: stack.s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: stack.s3.accessKeyId, secretAccessKey: stack.s3.secretAccessKey },
  });
  const keys: string[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: stack.s3.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []).map((object) => String(object.Key)));
      token = page.NextContinuationToken;
    } while (token);
  } finally {
    client.destroy();
  }
  return keys;
}

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
