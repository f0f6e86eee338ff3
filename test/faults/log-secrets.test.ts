import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { randomBase62 } from '@cutout/shared/infra';
import { startApiProcess, startWorkerProcess, type RunningProcess } from '../helpers/processes.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { distinctPhotos, getJob, startFaultStack, submitJob, waitUntil, type FaultStack } from './stack.ts';

/**
 * Logs go to log stores that many people can read: at the most verbose level, through a
 * job, a webhook, the dashboard and a shutdown, no key or signing secret may appear in
 * what the API and the worker write.
 */

describe('logs', () => {
  let stack: FaultStack;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    stack = await startFaultStack({});
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
  }, 60_000);

  it('carry request_id, job_id and tenant, and no API key, ByByBG key, admin key, webhook secret or review link', async () => {
    const adminKey = `admin_${randomBase62(32)}`;
    const env = stack.env({ LOG_LEVEL: 'trace', ADMIN_API_KEY: adminKey });
    const [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);

    const [photo] = await distinctPhotos(1);
    const id = await submitJob(api.url, stack.apiKey, photo!, { webhook_url: receiver.url });
    await waitUntil(
      async () => ((await getJob(api.url, stack.apiKey, id)).webhook?.state === 'delivered' ? true : undefined),
      {
        timeoutMs: 30_000,
        describe: () => `job ${id} not delivered`,
      },
    );
    const account = await request(`${api.url}/v1/account`, { headers: { 'x-api-key': stack.apiKey } });
    const secret = String(((await account.body.json()) as { webhook_secret: string }).webhook_secret);
    const basic = `Basic ${Buffer.from(`ops:${adminKey}`).toString('base64')}`;
    for (const headers of [{ 'x-api-key': adminKey }, { authorization: basic }])
      await (await request(`${api.url}/admin/queues/api/queues`, { headers })).body.dump();
    // A review link is as good as read access: used on the page, its data, and (refused) on /v1.
    const created = await request(`${api.url}/v1/jobs/${id}/review-link`, {
      method: 'POST',
      headers: { 'x-api-key': stack.apiKey },
    });
    const reviewPath = new URL(String(((await created.body.json()) as { url: string }).url)).pathname;
    const reviewToken = reviewPath.split('/')[2]!;
    for (const path of [
      reviewPath,
      `${reviewPath}/data`,
      `${reviewPath}/items/${id}/thumbs/original`,
      `${reviewPath}/nope`,
      `/review/${stack.apiKey}`,
    ]) {
      await (await request(`${api.url}${path}`)).body.dump();
    }
    await (await request(`${api.url}/v1/jobs`, { headers: { 'x-api-key': reviewToken } })).body.dump();
    await stopGracefully([api.process, worker]);

    const output = `${api.process.output()}\n${worker.output()}`;
    for (const [what, value] of Object.entries({
      apiKey: stack.apiKey,
      bybybgKey: env.BYBYBG_API_KEY!,
      adminKey,
      basic,
      secret,
      reviewToken,
    })) {
      expect(output.includes(value), `${what} appears in the logs`).toBe(false);
    }

    const apiLogs = api.process.logs();
    expect(apiLogs.some((entry) => entry.request_id && entry.tenant === stack.tenantId)).toBe(true);
    expect(worker.logs().some((entry) => entry.job_id === id && entry.tenant === stack.tenantId)).toBe(true);
  }, 120_000);
});

async function stopGracefully(processes: RunningProcess[]): Promise<void> {
  for (const child of processes) child.kill('SIGTERM');
  for (const child of processes) expect((await child.waitForExit(60_000)).code).toBe(0);
}
