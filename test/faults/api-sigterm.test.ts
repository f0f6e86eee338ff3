import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData, request } from 'undici';
import { startApiProcess } from '../helpers/processes.ts';
import { distinctPhotos, startFaultStack, type FaultStack } from './stack.ts';

/**
 * A deploy stops API processes with SIGTERM: requests already in flight get their answer,
 * and a request that outlasts SHUTDOWN_GRACE does not keep the process alive.
 * No worker runs here, so a `Prefer: wait` request stays in flight for its whole wait.
 */

describe('an API stopped with SIGTERM', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({});
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  }, 60_000);

  function postWaiting(apiUrl: string, photo: Buffer, waitSeconds: number) {
    const form = new FormData();
    form.append('file', new Blob([photo], { type: 'image/png' }), 'item.png');
    return request(`${apiUrl}/v1/jobs`, {
      method: 'POST',
      body: form,
      headers: { 'x-api-key': stack.apiKey, prefer: `wait=${waitSeconds}` },
    }).then(async (response) => ({
      status: response.statusCode,
      body: (await response.body.json()) as Record<string, unknown>,
    }));
  }

  it('answers the requests in flight, then exits 0', async () => {
    const api = await startApiProcess(stack.env({ SHUTDOWN_GRACE: '60s' }));
    const [photo] = await distinctPhotos(1);
    const answer = postWaiting(api.url, photo!, 3);
    await api.process.waitForLog('job accepted', 30_000);

    api.process.kill('SIGTERM');
    await expect(answer).resolves.toMatchObject({ status: 202, body: { status: 'queued' } });
    expect(await api.process.waitForExit(30_000)).toEqual({ code: 0, signal: null });
  }, 90_000);

  it('closes a request that outlasts SHUTDOWN_GRACE and exits 0 well before it would have ended', async () => {
    const api = await startApiProcess(stack.env({ SHUTDOWN_GRACE: '1s' }));
    const [photo] = await distinctPhotos(1);
    const answer = postWaiting(api.url, photo!, 60).then(
      () => 'answered',
      () => 'connection closed',
    );
    await api.process.waitForLog('job accepted', 30_000);

    api.process.kill('SIGTERM');
    expect(await api.process.waitForExit(30_000)).toEqual({ code: 0, signal: null });
    expect(await answer).toBe('connection closed');
    expect(
      api.process
        .logs()
        .some((entry) => entry.msg === 'requests still in flight after the shutdown grace; closing their connections'),
    ).toBe(true);
  }, 90_000);
});
