import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { Webhook } from 'standardwebhooks';
import { alphaAt, productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function api(system: TestSystem, path: string) {
  const response = await request(`${system.apiUrl}${path}`, { headers: { 'x-api-key': system.apiKey } });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, any> };
}

describe('one image, end to end', () => {
  let system: TestSystem;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    system = await startSystem({ faults: { latencyMs: 150 } });
  });
  afterAll(async () => {
    await system?.close();
    await receiver?.close();
  });

  it('uploads a photo and delivers a transparent cutout, a signed webhook and a pollable status', async () => {
    const photo = await productImage('jpeg');
    const form = new FormData();
    form.append('file', new Blob([photo], { type: 'image/jpeg' }), 'shoe.jpg');
    form.append('webhook_url', receiver.url);
    form.append('metadata', JSON.stringify({ sku: 'SHOE-42' }));

    const created = await request(`${system.apiUrl}/v1/jobs`, {
      method: 'POST',
      body: form,
      headers: { 'x-api-key': system.apiKey },
    });
    const job = (await created.body.json()) as Record<string, any>;
    expect(created.statusCode).toBe(202);
    expect(job.id).toMatch(/^job_[0-9A-Za-z]{24}$/);
    expect(job.status).toBe('queued');
    expect(created.headers.location).toBe(`${system.config.api.publicBaseUrl}/v1/jobs/${job.id}`);

    const seen = new Set<string>();
    let status = job;
    for (let polls = 0; polls < 300 && status.status !== 'succeeded' && status.status !== 'failed'; polls++) {
      status = (await api(system, `/v1/jobs/${job.id}`)).body;
      seen.add(status.status);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(status.status).toBe('succeeded');
    expect(seen.has('processing')).toBe(true);
    expect(status.metadata).toEqual({ sku: 'SHOE-42' });
    expect(status.result.content_type).toBe('image/png');

    const download = await request(status.result.url);
    expect(download.statusCode).toBe(200);
    const png = Buffer.from(await download.body.arrayBuffer());
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const { width, height, object } = PRODUCT_SHOT;
    const corners = await alphaAt(png, [
      [0, 0],
      [width - 1, 0],
      [0, height - 1],
      [width - 1, height - 1],
    ]);
    expect(corners).toEqual([0, 0, 0, 0]);
    const centre = await alphaAt(png, [
      [object.left + object.width / 2, object.top + object.height / 2],
      [object.left + 5, object.top + 5],
    ]);
    expect(centre).toEqual([255, 255]);

    const [delivery] = await receiver.waitFor(1);
    const account = await api(system, '/v1/account');
    const verified = new Webhook(account.body.webhook_secret).verify(delivery!.body, {
      'webhook-id': String(delivery!.headers['webhook-id']),
      'webhook-timestamp': String(delivery!.headers['webhook-timestamp']),
      'webhook-signature': String(delivery!.headers['webhook-signature']),
    }) as Record<string, any>;
    expect(verified.type).toBe('job.succeeded');
    expect(verified.data.id).toBe(job.id);
    expect(verified.data.status).toBe('succeeded');
    expect(verified.data.result.url).toMatch(/^http/);

    const record = await system.services.jobs.get(job.id);
    const original = await system.services.storage.getBuffer(record!.originalKey);
    expect(sha256(original)).toBe(sha256(photo));

    // The job view shows the delivery once the receiver has answered.
    let webhookState = '';
    for (let polls = 0; polls < 100 && webhookState !== 'delivered'; polls++) {
      webhookState = (await api(system, `/v1/jobs/${job.id}`)).body.webhook.state;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(webhookState).toBe('delivered');
  });

  it('announces a job ByByBG rejects as job.failed with an actionable error', async () => {
    await request(`${system.emulator.url}/_faults`, {
      method: 'PUT',
      body: JSON.stringify({ responseMode: 'bad' }),
      headers: { 'content-type': 'application/json' },
    });
    try {
      const form = new FormData();
      form.append('file', new Blob([await productImage('png')], { type: 'image/png' }), 'bag.png');
      form.append('webhook_url', receiver.url);
      const created = await request(`${system.apiUrl}/v1/jobs`, {
        method: 'POST',
        body: form,
        headers: { 'x-api-key': system.apiKey },
      });
      const job = (await created.body.json()) as Record<string, any>;
      const before = receiver.received.length;
      const [delivery] = (await receiver.waitFor(before + 1)).slice(before);
      const event = JSON.parse(delivery!.body);
      expect(event.type).toBe('job.failed');
      expect(event.data.id).toBe(job.id);
      expect(event.data.error.code).toBe('upstream_bad_response');
      expect(event.data.error.retryable).toBe(false);
      const status = await api(system, `/v1/jobs/${job.id}`);
      expect(status.body.status).toBe('failed');
      expect(status.body.result).toBeNull();
    } finally {
      await request(`${system.emulator.url}/_faults`, {
        method: 'PUT',
        body: JSON.stringify({ responseMode: 'image' }),
        headers: { 'content-type': 'application/json' },
      });
    }
  });
});
