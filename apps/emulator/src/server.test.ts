import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from './server.ts';
import { imageForm, postRemoveBg, productShot } from './test-support.ts';

const KEY = 'test-key-aaaa-0001';

let emulator: RunningEmulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

async function stats(url: string): Promise<{ inFlight: number; byStatus: Record<string, number> }> {
  const response = await request(`${url}/_stats`);
  return (await response.body.json()) as { inFlight: number; byStatus: Record<string, number> };
}

/** Polls the emulator's own counters instead of guessing a delay. */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await sleep(10);
}

describe('startEmulator', () => {
  it('listens on a free loopback port and names itself by URL', async () => {
    emulator = await startEmulator({ keys: [KEY] });
    expect(emulator.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await request(`${emulator.url}/healthz`);
    expect(await response.body.json()).toEqual({ status: 'ok' });
  });

  it('never answers when hangRate is 1: the client times out and close() still returns', async () => {
    emulator = await startEmulator({ keys: [KEY], faults: { hangRate: 1 } });
    const { url } = emulator;
    const image = await productShot();

    await expect(postRemoveBg(url, { key: KEY, form: imageForm(image), headersTimeout: 300 })).rejects.toMatchObject({
      code: 'UND_ERR_HEADERS_TIMEOUT',
    });

    // A second client that does not give up: close() must cut it off rather than wait for it.
    const pending = postRemoveBg(url, { key: KEY, form: imageForm(image) });
    pending.catch(() => {});
    await waitFor(async () => (await stats(url)).byStatus.hang === 2);
    await emulator.close();
    await expect(pending).rejects.toThrow();
  });

  it('cuts the body short when truncateRate is 1: the client sees a body error', async () => {
    emulator = await startEmulator({ keys: [KEY], faults: { truncateRate: 1 } });
    const response = await postRemoveBg(emulator.url, { key: KEY, form: imageForm(await productShot()) });
    expect(response.statusCode).toBe(200);
    expect(Number(response.headers['content-length'])).toBeGreaterThan(0);
    await expect(response.body.arrayBuffer()).rejects.toThrow();
    expect((await stats(emulator.url)).byStatus).toEqual({ truncated: 1 });
  });

  it('counts a call in flight until it is answered', async () => {
    emulator = await startEmulator({ keys: [KEY], faults: { hangRate: 1 } });
    const { url } = emulator;
    const pending = postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
    pending.catch(() => {});
    await waitFor(async () => (await stats(url)).inFlight === 1);
    await emulator.close();
    await expect(pending).rejects.toThrow();
  });

  it('closes more than once without error', async () => {
    emulator = await startEmulator({ keys: [KEY] });
    await Promise.all([emulator.close(), emulator.close()]);
  });
});
