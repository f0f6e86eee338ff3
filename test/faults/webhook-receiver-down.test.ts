import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Webhook } from 'standardwebhooks';
import { freePort, startApiProcess, startWorkerProcess } from '../helpers/processes.ts';
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
 * A client's webhook endpoint being down (a deploy, an outage) must delay its notifications,
 * not lose them: after a few failures in a row the endpoint's circuit opens and the other
 * deliveries wait without being sent; once the endpoint is back, a probe closes the circuit
 * and every delivery arrives, signed, with the `webhook-id` it had from the start.
 */

const JOBS = 20;

describe('a webhook receiver that is down for the first part of the run', () => {
  let stack: FaultStack;
  let receiver: WebhookReceiver | undefined;

  beforeAll(async () => {
    stack = await startFaultStack({ latencyMs: 20, fixedResult: true });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  }, 60_000);

  it('delivers every webhook once the receiver is back, each with one webhook-id', async () => {
    // Compressed schedule: 12 attempts over ~18.5 s, so the outage below fits inside it even on a
    // busy machine (over ~4 s, the first deliveries could run out of attempts while a loaded
    // machine was still finishing the jobs).
    const env = stack.env({
      WORKER_CONCURRENCY: '4',
      WEBHOOK_RETRY_SCHEDULE: '0,200ms,300ms,2s,2s,2s,2s,2s,2s,2s,2s,2s',
    });
    const port = await freePort();
    const webhookUrl = `http://127.0.0.1:${port}/hook`;
    const [api] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
    const downSince = Date.now();
    const ids = await submitAll(api.url, stack.apiKey, await distinctPhotos(JOBS), { webhook_url: webhookUrl });

    // Down: nothing listens on the port. Wait until every job succeeded and the endpoint's
    // circuit is open, holding deliveries back (the rest wait their turn behind it).
    const views = await waitForJobsToEnd(api.url, stack.apiKey, ids, 60_000);
    expect(countBy(views.map((view) => view.status))).toEqual({ succeeded: JOBS });
    let held: Record<string, number> = {};
    const pending = await waitUntil(
      async () => {
        const current = await waitForJobsToEnd(api.url, stack.apiKey, ids, 10_000);
        held = countBy(current.map((view) => `${view.webhook?.state}/${view.webhook?.attempts}`));
        return current.filter((view) => view.webhook?.state === 'endpoint_failing').length >= 4 ? current : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50, describe: () => `webhook state/attempts so far: ${JSON.stringify(held)}` },
    );
    expect(pending.filter((view) => view.webhook?.state === 'delivered' || view.webhook?.state === 'failed')).toEqual(
      [],
    );
    const attemptsWhileDown = pending.reduce((total, view) => total + Number(view.webhook.attempts), 0);

    receiver = await startWebhookReceiver({ port });
    const backAt = Date.now();
    let states: Record<string, number> = {};
    const delivered = await waitUntil(
      async () => {
        const current = await waitForJobsToEnd(api.url, stack.apiKey, ids, 10_000);
        states = countBy(current.map((view) => view.webhook?.state));
        return states.delivered === JOBS ? current : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, describe: () => `webhook states: ${JSON.stringify(states)}` },
    );
    const catchUpMs = Date.now() - backAt;

    const secret = await webhookSecret(api.url, stack.apiKey);
    const verifier = new Webhook(secret);
    const idsByJob = new Map<string, Set<string>>();
    for (const { headers, body } of receiver.received) {
      const webhookId = String(headers['webhook-id']);
      const event = verifier.verify(body, {
        'webhook-id': webhookId,
        'webhook-timestamp': String(headers['webhook-timestamp']),
        'webhook-signature': String(headers['webhook-signature']),
      }) as Json;
      expect(event.type).toBe('job.succeeded');
      idsByJob.set(String(event.data.id), (idsByJob.get(String(event.data.id)) ?? new Set()).add(webhookId));
    }
    expect([...idsByJob.keys()].sort()).toEqual([...ids].sort());
    for (const [jobId, webhookIds] of idsByJob) expect(webhookIds.size, jobId).toBe(1);

    printSummary('webhook-receiver-down', {
      jobs: JOBS,
      delivered: delivered.length,
      lost: 0,
      duplicate_webhooks: receiver.received.length - JOBS,
      attempts_max: Math.max(...delivered.map((view) => Number(view.webhook.attempts))),
      attempts_while_down: attemptsWhileDown,
      down_ms: backAt - downSince,
      all_delivered_after_back_ms: catchUpMs,
    });
  }, 180_000);
});

async function webhookSecret(apiUrl: string, apiKey: string): Promise<string> {
  const response = await request(`${apiUrl}/v1/account`, { headers: { 'x-api-key': apiKey } });
  return String(((await response.body.json()) as Json).webhook_secret);
}
