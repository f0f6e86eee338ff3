import { afterEach, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';

type Json = Record<string, any>;

async function submit(system: TestSystem, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const photo = await productImage('png', PRODUCT_SHOT, i);
    const form = new FormData();
    form.append('file', new Blob([photo], { type: 'image/png' }), `item-${i}.png`);
    const response = await request(`${system.apiUrl}/v1/jobs`, { method: 'POST', body: form, headers: { 'x-api-key': system.apiKey } });
    expect(response.statusCode).toBe(202);
    ids.push(((await response.body.json()) as Json).id);
  }
  return ids;
}

/** Polls until every job has ended; returns their final views. */
async function settle(system: TestSystem, ids: string[], timeoutMs = 60_000): Promise<Json[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const views = await Promise.all(ids.map(async (id) => {
      const response = await request(`${system.apiUrl}/v1/jobs/${id}`, { headers: { 'x-api-key': system.apiKey } });
      return (await response.body.json()) as Json;
    }));
    if (views.every((view) => ['succeeded', 'failed', 'canceled'].includes(view.status))) return views;
    if (Date.now() > deadline) throw new Error(`jobs still running: ${views.map((view) => view.status).join(',')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function emulatorStats(system: TestSystem): Promise<Json> {
  return (await (await request(`${system.emulator.url}/_stats`)).body.json()) as Json;
}

describe('the worker against an unreliable ByByBG', () => {
  let system: TestSystem | undefined;
  afterEach(async () => {
    await system?.close();
    system = undefined;
  });

  it('waits out 429s without using an attempt, so every job succeeds with one attempt allowed', async () => {
    system = await startSystem({ env: { BYBYBG_MAX_ATTEMPTS: '1' }, faults: { rateLimit: { perSecond: 4, burst: 1 } } });
    const views = await settle(system, await submit(system, 6));
    expect(views.map((view) => view.status)).toEqual(Array(6).fill('succeeded'));
    const stats = await emulatorStats(system);
    expect(stats.byStatus['200']).toBe(6);
  });

  it('retries 5xx answers with backoff until the jobs succeed', async () => {
    system = await startSystem({ env: { BYBYBG_MAX_ATTEMPTS: '12', BYBYBG_RETRY_DELAY: '10ms' }, faults: { errorRate: 0.4 } });
    const views = await settle(system, await submit(system, 8));
    expect(views.map((view) => view.status)).toEqual(Array(8).fill('succeeded'));
    const stats = await emulatorStats(system);
    const upstreamCalls = views.reduce((sum, view) => sum + view.upstream_calls, 0);
    expect(upstreamCalls).toBe(stats.total);
  });

  it('fails a job with upstream_unavailable after exactly the configured attempts when ByByBG keeps failing', async () => {
    system = await startSystem({ env: { BYBYBG_MAX_ATTEMPTS: '3', BYBYBG_RETRY_DELAY: '10ms' }, faults: { errorRate: 1 } });
    const [view] = await settle(system, await submit(system, 1));
    expect(view!.status).toBe('failed');
    expect(view!.error).toMatchObject({ code: 'upstream_unavailable', retryable: true });
    expect(view!.attempts).toBe(3);
    expect(view!.upstream_calls).toBe(3);
    expect((await emulatorStats(system)).total).toBe(3);
  });

  it('fails a job at once with upstream_forbidden when ByByBG answers 403', async () => {
    system = await startSystem({ env: { BYBYBG_MAX_ATTEMPTS: '5' } });
    await request(`${system.emulator.url}/_faults`, {
      method: 'PUT', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ forbiddenKeys: [system.config.bybybg.apiKeys[0]] }),
    });
    const [view] = await settle(system, await submit(system, 1));
    expect(view!.status).toBe('failed');
    expect(view!.error).toMatchObject({ code: 'upstream_forbidden', retryable: false });
    expect(view!.upstream_calls).toBe(1);
  });
});
