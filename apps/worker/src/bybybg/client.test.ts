import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { Agent, MockAgent } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createGuardedAgent } from '@cutout/shared/security';
import { makeByByBGClient, type ByByBGClientDeps } from './client.ts';
import { UpstreamError } from './errors.ts';
import {
  PNG,
  closedPortUrl,
  fileBytes,
  imageStream,
  json,
  readBody,
  readForm,
  rejection,
  reply,
  silentLogger,
  startUpstream,
  type Handler,
  type Upstream,
} from './testing.ts';

const KEY = 'sk_test_primary_0123456789';
const agent = new Agent();
// Result URLs go through the SSRF guard; loopback is allowed, as the tests' WEBHOOK_ALLOW_PRIVATE allows it.
const resultAgent = createGuardedAgent({ policy: { allowPrivate: ['127.0.0.0/8'] } });
let upstream: Upstream | undefined;

afterEach(async () => {
  await upstream?.close();
  upstream = undefined;
});
afterAll(() => Promise.all([agent.close(), resultAgent.close()]));

async function clientFor(handler: Handler, deps: Partial<ByByBGClientDeps> = {}) {
  upstream = await startUpstream(handler);
  return makeByByBGClient({
    apiUrl: upstream.url,
    apiKeys: [KEY],
    timeoutMs: 5000,
    dispatcher: agent,
    resultDispatcher: resultAgent,
    log: silentLogger,
    ...deps,
  });
}

/** Answers every upload with `answer` after reading the whole request. */
function answering(answer: Handler): Handler {
  return async (req, res) => {
    await readBody(req);
    await answer(req, res);
  };
}

const input = { openImage: imageStream(PNG), contentType: 'image/png' };

async function upstreamError(promise: Promise<unknown>): Promise<UpstreamError> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(UpstreamError);
  return error as UpstreamError;
}

describe('uploading the original', () => {
  it('sends the image as multipart field `file` with the options and the API key', async () => {
    const original = randomBytes(256 * 1024);
    let seen: { key: string | undefined; file: Buffer; filename: string | undefined; size: string | null } | undefined;
    const client = await clientFor(async (req, res) => {
      const form = await readForm(req);
      const file = form.get('file');
      seen = {
        key: req.headers['x-api-key'] as string | undefined,
        file: await fileBytes(form),
        filename: typeof file === 'string' ? undefined : file?.name,
        size: form.get('size') as string | null,
      };
      reply(res, 200, PNG, {
        'content-type': 'image/png',
        'x-ratelimit-limit': '10',
        'x-ratelimit-remaining': '9',
        'x-ratelimit-reset': '1',
      });
    });

    const result = await client.removeBackground({
      openImage: imageStream(original),
      contentType: 'image/jpeg',
      filename: 'shoe "red".jpg',
      options: { size: 'preview' },
    });

    expect(seen?.key).toBe(KEY);
    expect(seen?.file.equals(original)).toBe(true);
    expect(seen?.filename).toBe('shoe "red".jpg'); // escaped as %22 on the wire, decoded by the parser
    expect(seen?.size).toBe('preview');
    expect(result).toEqual({
      body: PNG,
      contentType: 'image/png',
      keyIndex: 0,
      rateLimit: { limit: 10, remaining: 9, resetMs: 1000 },
    });
  });

  it('starts sending the file before the original has been read to the end', async () => {
    const first = Buffer.alloc(64 * 1024, 1);
    const rest = Buffer.alloc(64 * 1024, 2);
    const source = new PassThrough();
    let firstArrived: () => void = () => undefined;
    const firstChunkSeen = new Promise<void>((resolve) => {
      firstArrived = resolve;
    });
    const client = await clientFor(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) {
        chunks.push(chunk as Buffer);
        // The tail is only written once the head arrived: a buffering client would never finish.
        if (Buffer.concat(chunks).includes(first)) firstArrived();
      }
      const form = await new Response(Buffer.concat(chunks), {
        headers: { 'content-type': req.headers['content-type'] ?? '' },
      }).formData();
      const file = await fileBytes(form);
      reply(res, 200, PNG, {
        'content-type': 'image/png',
        'x-file-ok': String(file.equals(Buffer.concat([first, rest]))),
      });
    });
    source.write(first);

    const pending = client.removeBackground({ openImage: async () => source, contentType: 'image/png' });
    await firstChunkSeen;
    source.end(rest);

    expect((await pending).body.equals(PNG)).toBe(true);
  });

  it('announces a Content-Length instead of chunked encoding when the size is known', async () => {
    let headers: Record<string, unknown> = {};
    let received: Buffer = Buffer.alloc(0);
    const client = await clientFor(async (req, res) => {
      headers = req.headers;
      received = await readBody(req);
      reply(res, 200, PNG, { 'content-type': 'image/png' });
    });

    await client.removeBackground({ ...input, byteLength: PNG.length, options: { format: 'png' } });

    expect(headers['transfer-encoding']).toBeUndefined();
    expect(Number(headers['content-length'])).toBe(received.length);
  });

  it('passes a failure to open the original through unchanged', async () => {
    const client = await clientFor(answering((_req, res) => reply(res, 200, PNG)));
    const missing = Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' });

    const error = await rejection(
      client.removeBackground({ openImage: () => Promise.reject(missing), contentType: 'image/png' }),
    );

    expect(error).toBe(missing);
  });

  it('passes a failure of the original stream mid-upload through as a storage error', async () => {
    const client = await clientFor(answering((_req, res) => reply(res, 200, PNG, { 'content-type': 'image/png' })));
    const storageFault = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const source = new PassThrough();
    source.write(Buffer.alloc(1024));
    setImmediate(() => source.destroy(storageFault));

    const error = await rejection(client.removeBackground({ openImage: async () => source, contentType: 'image/png' }));

    expect(error).toBe(storageFault); // S3's ECONNRESET, not upstream's: not an UpstreamError
  });
});

describe('reading a successful answer', () => {
  it('accepts JSON carrying the result as base64', async () => {
    const mock = new MockAgent();
    mock.disableNetConnect();
    mock
      .get('http://bybybg.test')
      .intercept({ path: '/v1/remove-bg', method: 'POST' })
      .reply(200, { result_b64: PNG.toString('base64') }, { headers: { 'content-type': 'application/json' } });
    const client = makeByByBGClient({
      apiUrl: 'http://bybybg.test',
      apiKeys: [KEY],
      timeoutMs: 5000,
      dispatcher: mock,
      resultDispatcher: mock,
      log: silentLogger,
    });

    const result = await client.removeBackground(input);

    expect(result.body.equals(PNG)).toBe(true);
    expect(result.contentType).toBe('image/png');
    await mock.close();
  });

  it('accepts JSON carrying a data: URL under `data`', async () => {
    const client = await clientFor(
      answering((_req, res) => json(res, 200, { data: { image: `data:image/png;base64,${PNG.toString('base64')}` } })),
    );

    const result = await client.removeBackground(input);

    expect(result.body.equals(PNG)).toBe(true);
    expect(result.contentType).toBe('image/png');
  });

  it('downloads a result URL without sending the API key there', async () => {
    let downloadKey: unknown = 'not requested';
    const client = await clientFor(async (req, res) => {
      if (req.method === 'GET' && req.url === '/results/1') {
        downloadKey = req.headers['x-api-key'];
        return reply(res, 200, PNG, { 'content-type': 'application/octet-stream' });
      }
      await readBody(req);
      json(res, 200, { data: { result_url: `${upstream?.url}/results/1` } });
    });

    const result = await client.removeBackground(input);

    expect(result.body.equals(PNG)).toBe(true);
    expect(result.contentType).toBe('image/png'); // sniffed from the bytes
    expect(downloadKey).toBeUndefined();
  });

  it('rejects an HTML page as a bad response that quotes its start', async () => {
    const client = await clientFor(
      answering((_req, res) =>
        reply(res, 200, '<html><body>Scheduled "maintenance"\n</body></html>', { 'content-type': 'text/html' }),
      ),
    );

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({ code: 'upstream_bad_response', kind: 'permanent', retryable: false });
    expect(error.message).toContain('"<html><body>Scheduled \\"maintenance\\"\\n</body></html>"');
  });

  it('rejects JSON that carries no image as a bad response', async () => {
    const client = await clientFor(answering((_req, res) => json(res, 200, { status: 'queued', image: 'pending' })));

    const error = await upstreamError(client.removeBackground(input));

    expect(error.code).toBe('upstream_bad_response');
    expect(error.message).toContain('{\\"status\\":\\"queued\\"');
  });

  it('refuses a result larger than the cap', async () => {
    const client = await clientFor(
      answering((_req, res) => reply(res, 200, Buffer.alloc(4096), { 'content-type': 'image/png' })),
      { maxResultBytes: 1024 },
    );

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({ code: 'upstream_bad_response', kind: 'permanent' });
  });
});

describe('downloading a result URL through the SSRF guard', () => {
  // 127.0.0.2 stands in for a public CDN: the only address this policy allows. ByByBG's
  // endpoint on 127.0.0.1 is configured by the operator and not guarded; its result URLs are.
  const cdnOnly = { allowPrivate: ['127.0.0.2/32'] };
  const guarded: ReturnType<typeof createGuardedAgent>[] = [];
  let cdn: Upstream | undefined;
  afterEach(async () => {
    await cdn?.close();
    cdn = undefined;
    await Promise.all(guarded.splice(0).map((dispatcher) => dispatcher.close()));
  });

  /** ByByBG on 127.0.0.1 answering with `resultUrl`, and recording every GET it receives. */
  async function pointingAt(resultUrl: (upstreamUrl: string) => string) {
    const gets: string[] = [];
    const resultDispatcher = createGuardedAgent({ policy: cdnOnly });
    guarded.push(resultDispatcher);
    const client = await clientFor(
      async (req, res) => {
        if (req.method === 'GET') {
          gets.push(req.url ?? '');
          return reply(res, 200, PNG, { 'content-type': 'image/png' });
        }
        await readBody(req);
        json(res, 200, { data: { result_url: resultUrl(upstream!.url) } });
      },
      { resultDispatcher },
    );
    return { client, gets };
  }

  const cdnServing = async (handler: Handler) => {
    cdn = await startUpstream(handler, '127.0.0.2');
    return cdn.url;
  };

  it('refuses a result URL at an address the policy does not allow, without connecting or naming it', async () => {
    const { client, gets } = await pointingAt((url) => `${url}/results/1`);

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({ code: 'upstream_bad_response', kind: 'permanent', retryable: false });
    expect(error.message).toContain('not public');
    expect(error.message).not.toMatch(/127\.0\.0|localhost|\/results/);
    expect(gets).toEqual([]);
  });

  it.each([
    ['an IP literal', (port: string) => `http://127.0.0.1:${port}/results/1`],
    ['a name that resolves to loopback', (port: string) => `http://localhost:${port}/results/1`],
  ])('does not follow a redirect to a disallowed address given as %s', async (_name, target) => {
    let upstreamPort = '';
    const hops: string[] = [];
    const cdnUrl = await cdnServing((req, res) => {
      hops.push(req.url ?? '');
      res.writeHead(302, { location: target(upstreamPort) }).end();
    });
    const { client, gets } = await pointingAt((url) => {
      upstreamPort = new URL(url).port;
      return `${cdnUrl}/r/1.png`;
    });

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({ code: 'upstream_bad_response', kind: 'permanent' });
    expect(error.message).not.toMatch(/127\.0\.0|localhost/);
    expect(hops).toEqual(['/r/1.png']);
    expect(gets).toEqual([]);
  });

  it('follows redirects between allowed addresses', async () => {
    const cdnUrl = await cdnServing((req, res) => {
      if (req.url === '/r/1.png') res.writeHead(302, { location: '/stored/1.png' }).end();
      else reply(res, 200, PNG, { 'content-type': 'image/png' });
    });
    const { client } = await pointingAt(() => `${cdnUrl}/r/1.png`);

    const result = await client.removeBackground(input);

    expect(result.body.equals(PNG)).toBe(true);
  });

  it.each([
    ['text/html', '<html>session=s3cr3t-0123456789</html>', 'text/html (38 bytes)'],
    ['text/html"><script>alert(1)</script>', 's3cr3t-0123456789', 'a body of an unrecognised content type (17 bytes)'],
  ])('describes a body of type %s by its type and size, quoting none of it', async (contentType, body, described) => {
    const cdnUrl = await cdnServing((_req, res) => reply(res, 200, body, { 'content-type': contentType }));
    const { client } = await pointingAt(() => `${cdnUrl}/r/1.png`);

    const error = await upstreamError(client.removeBackground(input));

    expect(error.code).toBe('upstream_bad_response');
    expect(error.message).toBe(`ByByBG's result URL answered ${described} instead of an image`);
  });
});

describe('upstream errors', () => {
  it('reports a 429 with Retry-After in seconds as a rate limit', async () => {
    const client = await clientFor(
      answering((_req, res) => json(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '3' })),
    );

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({
      code: 'upstream_rate_limited',
      kind: 'rate_limited',
      retryable: true,
      status: 429,
      retryAfterMs: 3000,
    });
  });

  it('reads a 429 Retry-After given as an HTTP date', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const client = await clientFor(
      answering((_req, res) => reply(res, 429, '', { 'retry-after': 'Tue, 01 Jan 2030 00:00:30 GMT' })),
      { now: () => now },
    );

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({ kind: 'rate_limited', retryAfterMs: 30_000 });
  });

  it('falls back to X-RateLimit-Reset when a 429 has no Retry-After', async () => {
    const client = await clientFor(
      answering((_req, res) => reply(res, 429, '', { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '7' })),
    );

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({ kind: 'rate_limited', retryAfterMs: 7000 });
  });

  it.each([500, 503])('reports a %i as transient', async (status) => {
    const client = await clientFor(answering((_req, res) => reply(res, status, 'internal details')));

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({ code: 'upstream_unavailable', kind: 'transient', retryable: true, status });
    expect(error.message).not.toContain('internal details');
  });

  it('reports a 403 as permanently forbidden', async () => {
    const client = await clientFor(
      answering((_req, res) => json(res, 403, { message: 'Your plan does not include HD output' })),
    );

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({
      code: 'upstream_forbidden',
      kind: 'permanent',
      retryable: false,
      status: 403,
      message: 'Your plan does not include HD output',
    });
  });

  it("reports a 400 as rejected with upstream's message", async () => {
    const client = await clientFor(answering((_req, res) => json(res, 400, { error: { message: 'Image too small' } })));

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({
      code: 'upstream_rejected',
      kind: 'permanent',
      status: 400,
      message: 'Image too small',
    });
  });

  it('truncates a long upstream message', async () => {
    const client = await clientFor(
      answering((_req, res) =>
        reply(res, 422, `Unsupported image: ${'x'.repeat(5000)}`, { 'content-type': 'text/plain' }),
      ),
    );

    const error = await upstreamError(client.removeBackground(input));

    expect(error.code).toBe('upstream_rejected');
    expect(error.message.startsWith('Unsupported image: xxx')).toBe(true);
    expect(error.message.length).toBeLessThanOrEqual(200);
  });
});

describe('network failures', () => {
  it('gives up on an upstream that does not answer within the timeout', async () => {
    const client = await clientFor(() => undefined, { timeoutMs: 200 });

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({
      code: 'upstream_unavailable',
      kind: 'transient',
      retryable: true,
      message: 'ByByBG did not answer within 200 ms',
    });
  });

  it('gives up on a body that stalls after the headers', async () => {
    const client = await clientFor(
      answering((_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '1000' });
        res.write(PNG.subarray(0, 8));
      }),
      { timeoutMs: 200 },
    );

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({
      code: 'upstream_unavailable',
      kind: 'transient',
      message: 'ByByBG did not answer within 200 ms',
    });
  });

  it('reports a request the caller cancelled as transient', async () => {
    const client = await clientFor(() => undefined);
    const controller = new AbortController();

    const pending = client.removeBackground({ ...input, signal: controller.signal });
    controller.abort();
    const error = await upstreamError(pending);

    expect(error).toMatchObject({
      code: 'upstream_unavailable',
      kind: 'transient',
      message: 'ByByBG request was cancelled',
    });
  });

  it('reports a refused connection as transient', async () => {
    const client = makeByByBGClient({
      apiUrl: await closedPortUrl(),
      apiKeys: [KEY],
      timeoutMs: 5000,
      dispatcher: agent,
      resultDispatcher: resultAgent,
      log: silentLogger,
    });

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({ code: 'upstream_unavailable', kind: 'transient', retryable: true });
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('reports a connection closed before the body ended as transient', async () => {
    const client = await clientFor(
      answering((_req, res) => {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': '1000' });
        res.end(PNG.subarray(0, 8));
        res.socket?.destroy();
      }),
    );

    const error = await upstreamError(client.removeBackground(input));

    expect(error).toMatchObject({ code: 'upstream_unavailable', kind: 'transient' });
  });
});
