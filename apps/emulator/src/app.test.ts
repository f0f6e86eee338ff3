import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { removeBackground } from './cutout.ts';
import { startEmulator, type RunningEmulator, type StartEmulatorOptions } from './server.ts';
import { bodyBuffer, fakeClock, imageForm, postRemoveBg, productShot, readPng } from './test-support.ts';

const KEY = 'test-key-aaaa-0001';
const OTHER_KEY = 'test-key-bbbb-0002';

let emulator: RunningEmulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

async function start(options: Partial<StartEmulatorOptions> = {}): Promise<RunningEmulator> {
  emulator = await startEmulator({ keys: [KEY], ...options });
  return emulator;
}

async function admin(method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown) {
  const response = await request(`${emulator!.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return { status: response.statusCode, body: (await response.body.json()) as any };
}

describe('POST /v1/remove-bg: auth and rate limit', () => {
  it('answers 401 for a missing key', async () => {
    const { url } = await start();
    const response = await postRemoveBg(url, { form: imageForm(await productShot()) });
    expect(response.statusCode).toBe(401);
    expect(await response.body.json()).toEqual({ error: { message: expect.stringContaining('X-API-KEY') } });
  });

  it('answers 401 for an unknown key', async () => {
    const { url } = await start();
    const response = await postRemoveBg(url, { key: 'not-a-key', form: imageForm(await productShot()) });
    expect(response.statusCode).toBe(401);
    expect(await response.body.json()).toEqual({ error: { message: 'invalid API key' } });
  });

  it('answers 403 for a forbidden key', async () => {
    const { url } = await start({ keys: [KEY, OTHER_KEY], faults: { forbiddenKeys: [OTHER_KEY] } });
    const response = await postRemoveBg(url, { key: OTHER_KEY, form: imageForm(await productShot()) });
    expect(response.statusCode).toBe(403);
    expect(await response.body.json()).toEqual({ error: { message: expect.any(String) } });
  });

  it('answers 402 from the call after the last credit on, and 200 again once credits are given back', async () => {
    const { url } = await start({ faults: { rateLimit: null, fixedResult: true } });
    const call = async () => {
      const response = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
      return {
        status: response.statusCode,
        body: response.statusCode === 200 ? await response.body.dump() : await response.body.json(),
      };
    };
    expect((await admin('PUT', '/_faults', { credits: 2 })).body.credits).toBe(2);
    // A call that produces no result (here a missing image) uses no credit.
    expect((await postRemoveBg(url, { key: KEY })).statusCode).toBe(400);

    expect((await call()).status).toBe(200);
    expect((await call()).status).toBe(200);
    const refused = await call();
    expect(refused).toEqual({ status: 402, body: { error: { message: expect.stringContaining('credits') } } });
    expect((await call()).status).toBe(402);
    expect((await admin('GET', '/_faults')).body.credits).toBe(0);

    await admin('PUT', '/_faults', { credits: null });
    expect((await call()).status).toBe(200);
    expect((await admin('GET', '/_stats')).body.byStatus).toEqual({ 200: 3, 400: 1, 402: 2 });
  });

  it('answers 429 with Retry-After once the burst is spent, and again 200 after a refill', async () => {
    const clock = fakeClock();
    const { url } = await start({
      now: clock.now,
      faults: { rateLimit: { perSecond: 1, burst: 2 }, fixedResult: true },
    });
    const image = await productShot();

    const first = await postRemoveBg(url, { key: KEY, form: imageForm(image) });
    await first.body.dump();
    expect(first.statusCode).toBe(200);
    expect(first.headers).toMatchObject({
      'x-ratelimit-limit': '2',
      'x-ratelimit-remaining': '1',
      'x-ratelimit-reset': '1',
    });
    await (await postRemoveBg(url, { key: KEY, form: imageForm(image) })).body.dump();

    const limited = await postRemoveBg(url, { key: KEY, form: imageForm(image) });
    expect(limited.statusCode).toBe(429);
    expect(limited.headers).toMatchObject({
      'retry-after': '1',
      'x-ratelimit-limit': '2',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '2',
    });
    expect(await limited.body.json()).toEqual({ error: { message: 'rate limit exceeded' } });

    clock.advance(1000);
    const recovered = await postRemoveBg(url, { key: KEY, form: imageForm(image) });
    await recovered.body.dump();
    expect(recovered.statusCode).toBe(200);
    expect(recovered.headers['x-ratelimit-remaining']).toBe('0');
  });

  it('sends no rate-limit headers when rate limiting is off', async () => {
    const { url } = await start({ faults: { rateLimit: null, fixedResult: true } });
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
    await response.body.dump();
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-ratelimit-limit']).toBeUndefined();
  });
});

describe('POST /v1/remove-bg: uploads', () => {
  it('answers 400 when the form has no file', async () => {
    const { url } = await start();
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(undefined, { size: 'auto' }) });
    expect(response.statusCode).toBe(400);
    expect(await response.body.json()).toEqual({ error: { message: expect.stringContaining('"file"') } });
  });

  it('answers 400 when the image is in another field', async () => {
    const { url } = await start();
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot(), {}, 'image') });
    expect(response.statusCode).toBe(400);
    await response.body.dump();
  });

  it('answers 400 when the file is not an image', async () => {
    const { url } = await start();
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(Buffer.from('%PDF-1.4 not an image')) });
    expect(response.statusCode).toBe(400);
    // The call used a token, so it reports the rate limit like any other.
    expect(response.headers['x-ratelimit-remaining']).toBe('9');
    expect(await response.body.json()).toEqual({
      error: { message: expect.stringContaining('not a decodable image') },
    });
  });

  it('answers 400 to a body that is not multipart', async () => {
    const { url } = await start();
    const response = await request(`${url}/v1/remove-bg`, {
      method: 'POST',
      headers: { 'x-api-key': KEY, 'content-type': 'image/png' },
      body: await productShot(),
    });
    expect(response.statusCode).toBe(400);
    expect(await response.body.json()).toEqual({ error: { message: expect.stringContaining('multipart/form-data') } });
  });

  it('answers 413 above the upload limit', async () => {
    const { url } = await start({ maxUploadBytes: 1000 });
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(Buffer.alloc(5000, 1)) });
    expect(response.statusCode).toBe(413);
    expect(await response.body.json()).toEqual({ error: { message: expect.any(String) } });
  });

  for (const format of ['png', 'jpeg'] as const) {
    it(`cuts out a ${format} product shot into a PNG of the same size`, async () => {
      const { url } = await start();
      const form = imageForm(await productShot(format), { size: 'auto', format: 'png' });
      const response = await postRemoveBg(url, { key: KEY, form });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('image/png');
      const result = await readPng(await bodyBuffer(response));
      expect(result).toMatchObject({ format: 'png', width: 200, height: 160 });
      for (const [x, y] of [
        [0, 0],
        [199, 0],
        [0, 159],
        [199, 159],
      ] as const)
        expect(result.pixel(x, y).a).toBe(0);
      expect(result.pixel(100, 80)).toMatchObject({ a: 255, r: expect.toSatisfy((r: number) => r > 200) });
      expect(result.pixel(100, 80).g).toBeLessThan(60);
    });
  }

  it('answers a 1x1 transparent PNG when fixedResult is on', async () => {
    const { url } = await start({ faults: { fixedResult: true } });
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
    const result = await readPng(await bodyBuffer(response));
    expect(result).toMatchObject({ width: 1, height: 1 });
    expect(result.pixel(0, 0).a).toBe(0);
  });
});

describe('POST /v1/remove-bg: faults and response modes', () => {
  it('answers 5xx with the error envelope when errorRate is 1', async () => {
    const { url } = await start({ faults: { errorRate: 1 } });
    for (let i = 0; i < 5; i++) {
      const response = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
      expect([500, 502, 503]).toContain(response.statusCode);
      expect(await response.body.json()).toEqual({ error: { message: expect.any(String) } });
    }
  });

  it('picks the 5xx status from the injected random source', async () => {
    const { url } = await start({ faults: { errorRate: 1 }, random: () => 0.5 });
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
    await response.body.dump();
    expect(response.statusCode).toBe(502);
  });

  it('answers the PNG as base64 in JSON in json-base64 mode', async () => {
    const image = await productShot();
    const { url } = await start({ faults: { responseMode: 'json-base64' } });
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(image) });
    expect(response.headers['content-type']).toContain('application/json');
    const body = (await response.body.json()) as { data: { result_b64: string } };
    expect(Buffer.from(body.data.result_b64, 'base64')).toEqual(await removeBackground(image, { tolerance: 32 }));
  });

  it('answers a URL that serves the PNG in json-url mode', async () => {
    const image = await productShot();
    const { url } = await start({ faults: { responseMode: 'json-url' } });
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(image) });
    const body = (await response.body.json()) as { data: { result_url: string } };
    expect(body.data.result_url).toMatch(new RegExp(`^${url}/_results/[0-9a-f]{32}\\.png$`));
    const result = await request(body.data.result_url);
    expect(result.headers['content-type']).toBe('image/png');
    expect(await bodyBuffer(result)).toEqual(await removeBackground(image, { tolerance: 32 }));

    const missing = await request(`${url}/_results/${'0'.repeat(32)}.png`);
    expect(missing.statusCode).toBe(404);
    await missing.body.dump();
  });

  it('answers 200 with an HTML body in bad mode', async () => {
    const { url } = await start({ faults: { responseMode: 'bad' } });
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/html');
    expect(await response.body.text()).toBe('<html>oops</html>');
  });

  it('still answers with latency configured', async () => {
    const { url } = await start({ faults: { latencyMs: 20, latencyJitterMs: 20, fixedResult: true } });
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
    await response.body.dump();
    expect(response.statusCode).toBe(200);
  });
});

describe('admin endpoints', () => {
  it('replaces the valid keys with PUT /_keys', async () => {
    const { url } = await start({ faults: { fixedResult: true } });
    expect(await admin('PUT', '/_keys', { keys: [OTHER_KEY] })).toEqual({ status: 200, body: { keys: ['test…0002'] } });
    const old = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
    await old.body.dump();
    expect(old.statusCode).toBe(401);
    const fresh = await postRemoveBg(url, { key: OTHER_KEY, form: imageForm(await productShot()) });
    await fresh.body.dump();
    expect(fresh.statusCode).toBe(200);
    expect((await admin('PUT', '/_keys', { keys: 'one-key' })).status).toBe(400);
  });

  it('counts calls per status and per masked key, and resets', async () => {
    const { url } = await start({
      keys: [KEY, OTHER_KEY],
      faults: { fixedResult: true, rateLimit: { perSecond: 0.001, burst: 1 } },
    });
    const image = await productShot();
    for (const key of [KEY, KEY, OTHER_KEY, undefined]) {
      await (await postRemoveBg(url, { key, form: imageForm(image) })).body.dump();
    }
    expect(await admin('GET', '/_stats')).toEqual({
      status: 200,
      body: {
        total: 4,
        inFlight: 0,
        byStatus: { '200': 2, '429': 1, '401': 1 },
        byKey: { 'test…0001': { '200': 1, '429': 1 }, 'test…0002': { '200': 1 }, '(none)': { '401': 1 } },
      },
    });
    expect((await admin('POST', '/_stats/reset')).body).toEqual({ total: 0, inFlight: 0, byStatus: {}, byKey: {} });
    expect((await admin('GET', '/_stats')).body.total).toBe(0);
  });

  it('updates fault settings partially with PUT /_faults and shows them with GET', async () => {
    await start();
    const updated = await admin('PUT', '/_faults', { errorRate: 0.25, responseMode: 'json-url' });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      errorRate: 0.25,
      responseMode: 'json-url',
      rateLimit: { perSecond: 10, burst: 10 },
    });
    expect((await admin('GET', '/_faults')).body).toEqual(updated.body);
  });

  it('rejects bad fault settings with 400 and keeps the old ones', async () => {
    await start();
    for (const bad of [
      { errorRate: 2 },
      { responseMode: 'xml' },
      { rateLimit: { perSecond: -1, burst: 1 } },
      { nope: true },
      [1],
    ]) {
      const response = await admin('PUT', '/_faults', bad);
      expect(response.status).toBe(400);
      expect(response.body).toEqual({ error: { message: expect.stringContaining('invalid fault settings') } });
    }
    const notJson = await request(`${emulator!.url}/_faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    expect(notJson.statusCode).toBe(400);
    await notJson.body.dump();
    expect((await admin('GET', '/_faults')).body).toMatchObject({ errorRate: 0, responseMode: 'image' });
  });

  it('turns rate limiting off at run time', async () => {
    const { url } = await start({ faults: { fixedResult: true, rateLimit: { perSecond: 0.001, burst: 1 } } });
    await (await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) })).body.dump();
    await admin('PUT', '/_faults', { rateLimit: null });
    const response = await postRemoveBg(url, { key: KEY, form: imageForm(await productShot()) });
    await response.body.dump();
    expect(response.statusCode).toBe(200);
  });

  it('answers /healthz and a 404 envelope for unknown routes', async () => {
    await start();
    expect(await admin('GET', '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await admin('GET', '/nope')).toEqual({
      status: 404,
      body: { error: { message: 'no route for GET /nope' } },
    });
  });
});

describe('POST /v1/remove-bg: problem cutouts on demand', () => {
  /** The answer's alpha: the largest value, and how many pixels of the bottom row are opaque. */
  async function cutoutOf(options: Record<string, string> = {}) {
    const response = await postRemoveBg(emulator!.url, { key: KEY, form: imageForm(await productShot(), options) });
    expect(response.statusCode).toBe(200);
    const png = await readPng(await bodyBuffer(response));
    let maxAlpha = 0;
    for (let y = 0; y < png.height; y++)
      for (let x = 0; x < png.width; x++) maxAlpha = Math.max(maxAlpha, png.pixel(x, y).a);
    let bottomOpaque = 0;
    for (let x = 0; x < png.width; x++) if (png.pixel(x, png.height - 1).a === 255) bottomOpaque++;
    return { width: png.width, height: png.height, maxAlpha, corner: png.pixel(0, 0).a, bottomOpaque };
  }

  it('answers an empty, an unchanged, a cut-off or a ghostly cutout when /_faults asks for one', async () => {
    await start();
    expect(await cutoutOf()).toMatchObject({ width: 200, height: 160, maxAlpha: 255, corner: 0, bottomOpaque: 0 });
    expect((await admin('PUT', '/_faults', { cutout: 'empty' })).body.cutout).toBe('empty');
    expect(await cutoutOf()).toMatchObject({ width: 200, height: 160, maxAlpha: 0 });
    await admin('PUT', '/_faults', { cutout: 'unchanged' });
    expect(await cutoutOf()).toMatchObject({ width: 200, height: 160, corner: 255, bottomOpaque: 200 });
    await admin('PUT', '/_faults', { cutout: 'cut_off' });
    // The frame ends in the middle of the 60-pixel-high box (rows 50–109): the box's 80 columns meet the bottom edge.
    expect(await cutoutOf()).toMatchObject({ width: 200, height: 80, bottomOpaque: 80 });
    await admin('PUT', '/_faults', { cutout: 'ghost' });
    expect(await cutoutOf()).toMatchObject({ width: 200, height: 160, maxAlpha: 102, corner: 0 });
    expect((await admin('PUT', '/_faults', { cutout: 'blurred' })).status).toBe(400);
  });

  it('answers the problem cutout a request names in its emulate_cutout option, over the fault setting', async () => {
    await start({ faults: { cutout: 'ghost' } });
    expect(await cutoutOf({ emulate_cutout: 'empty' })).toMatchObject({ maxAlpha: 0 });
    expect(await cutoutOf({ emulate_cutout: 'real' })).toMatchObject({ maxAlpha: 255, corner: 0 });
    expect(await cutoutOf()).toMatchObject({ maxAlpha: 102 });
  });
});
