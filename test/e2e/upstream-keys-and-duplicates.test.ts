import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import {
  emulatorStats,
  getJob,
  setEmulatorKeys,
  settle,
  submitPhoto,
  submitPhotos,
  type Json,
} from '../helpers/jobs.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function readyz(system: TestSystem): Promise<Json> {
  return (await (await request(`${system.apiUrl}/readyz`)).body.json()) as Json;
}

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('upstream keys and duplicate images', () => {
  let system: TestSystem | undefined;
  afterEach(async () => {
    await system?.close();
    system = undefined;
  });

  it('calls ByByBG once for the same image submitted twice and gives both jobs the same result', async () => {
    system = await startSystem({ faults: { latencyMs: 300 } });
    const photo = await productImage('png', PRODUCT_SHOT, 7);
    const first = await submitPhoto(system, photo);
    const second = await submitPhoto(system, photo);
    const views = await settle(system, [first, second]);
    expect(views.map((view) => view.status)).toEqual(['succeeded', 'succeeded']);
    expect((await emulatorStats(system)).total).toBe(1);
    expect(views.map((view) => view.credits_saved).sort()).toEqual([0, 1]);
    expect(views.reduce((sum, view) => sum + view.upstream_calls, 0)).toBe(1);
    const results = await Promise.all(
      views.map(async (view) => Buffer.from(await (await request(view.result.url)).body.arrayBuffer())),
    );
    expect(sha256(results[0]!)).toBe(sha256(results[1]!));
    const account = (await (
      await request(`${system.apiUrl}/v1/account`, { headers: { 'x-api-key': system.apiKey } })
    ).body.json()) as Json;
    expect(account.usage_today).toMatchObject({ jobs: 2, upstream_calls: 1, credits_saved: 1 });
  });

  it('calls ByByBG again for the same image with other options', async () => {
    system = await startSystem({ env: { BYBYBG_ALLOWED_OPTIONS: 'size' } });
    const photo = await productImage('png', PRODUCT_SHOT, 8);
    const ids = [await submitPhoto(system, photo), await submitPhoto(system, photo, { options: '{"size":"preview"}' })];
    const views = await settle(system, ids);
    expect(views.map((view) => view.status)).toEqual(['succeeded', 'succeeded']);
    expect((await emulatorStats(system)).total).toBe(2);
  });

  it('holds the queue on a rejected key, says why, and resumes by itself once the key works', async () => {
    system = await startSystem({
      env: { WORKER_CONCURRENCY: '1', BYBYBG_KEY_PROBE_INTERVAL: '300ms', BYBYBG_MAX_ATTEMPTS: '2' },
    });
    const goodKey = system.config.bybybg.apiKeys[0]!;
    await setEmulatorKeys(system, ['some-other-account-key']);
    const ids = await submitPhotos(system, 5, { firstVariant: 100 });

    const ready = await until(
      () => readyz(system!),
      (body) => body.checks.upstream.ok === false,
    );
    expect(ready.status).toBe('degraded');
    expect(ready.checks.upstream.detail).toMatch(/401/);
    // Let the probes run a few times: the jobs must still be waiting, none attempted twice.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const waiting = await Promise.all(ids.map((id) => getJob(system!, id)));
    expect(waiting.map((view) => view.status)).toEqual(Array(5).fill('queued'));
    expect(waiting.every((view) => view.waiting_reason === 'upstream_unauthorized')).toBe(true);
    expect(waiting.reduce((sum, view) => sum + view.upstream_calls, 0)).toBe(1);

    await setEmulatorKeys(system, [goodKey]);
    const views = await settle(system, ids);
    expect(views.map((view) => view.status)).toEqual(Array(5).fill('succeeded'));
    expect(views.every((view) => view.attempts === 1)).toBe(true);
    const after = await until(
      () => readyz(system!),
      (body) => body.checks.upstream.ok === true,
    );
    expect(after.status).toBe('ready');
  });

  it('uses the next key while the first answers 401', async () => {
    system = await startSystem();
    const goodKey = system.config.bybybg.apiKeys[0]!;
    await system.close();
    system = await startSystem({ env: { BYBYBG_API_KEY: `revoked-key-0000000000,${goodKey}` } });
    await setEmulatorKeys(system, system.config.bybybg.apiKeys.slice(1));
    const views = await settle(system, await submitPhotos(system, 3, { firstVariant: 200 }));
    expect(views.map((view) => view.status)).toEqual(Array(3).fill('succeeded'));
    const stats = await emulatorStats(system);
    expect(stats.byStatus['401']).toBe(1);
    expect((await readyz(system)).status).toBe('ready');
  });
});
