import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { generateApiKey, makeApiKeyStore } from '../../apps/api/src/auth/api-keys.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { answerWhileBodyPending } from '../helpers/raw-http.ts';
import { callApi, eventually } from '../helpers/webhooks.ts';
import { postBatch } from '../helpers/batches.ts';

type Json = Record<string, any>;

async function get(system: TestSystem, path: string, headers: Record<string, string> = {}) {
  const response = await request(`${system.apiUrl}${path}`, { headers });
  const text = await response.body.text();
  return {
    status: response.statusCode,
    headers: response.headers,
    body: text.startsWith('{') ? (JSON.parse(text) as Json) : {},
  };
}

describe('the edge of the API', () => {
  let system: TestSystem | undefined;
  afterEach(async () => {
    await system?.close();
    system = undefined;
  });

  describe('authentication before the body', () => {
    it('answers 401 to a keyless batch while its 4.5 MB body is still being sent', async () => {
      system = await startSystem({ workers: 0 });
      const answer = await answerWhileBodyPending(system.apiUrl, {
        path: '/v1/batches',
        headers: { 'content-type': 'application/json' },
        firstChunk: '{"items":[',
        declaredLength: 4_500_000,
      });
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.body).error.code).toBe('missing_api_key');
    });

    it('answers 401, not 400, to a keyless request with a malformed JSON body', async () => {
      system = await startSystem({ workers: 0 });
      const response = await request(`${system.apiUrl}/v1/batches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"items": [',
      });
      expect(response.statusCode).toBe(401);
      expect(((await response.body.json()) as Json).error.code).toBe('missing_api_key');
    });

    it('answers 403 to a read-only key submitting an upload before reading the file', async () => {
      system = await startSystem({ workers: 0 });
      const readOnly = (
        await makeApiKeyStore({ redis: system.services.redis, prefix: system.config.redis.prefix }).create({
          tenantId: system.tenantId,
          scopes: ['jobs:read'],
        })
      ).key;
      const answer = await answerWhileBodyPending(system.apiUrl, {
        path: '/v1/jobs',
        headers: { 'content-type': 'multipart/form-data; boundary=x', 'x-api-key': readOnly },
        firstChunk:
          '--x\r\ncontent-disposition: form-data; name="file"; filename="a.png"\r\ncontent-type: image/png\r\n\r\n',
        declaredLength: 20_000_000,
      });
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body).error.code).toBe('insufficient_scope');
    });
  });

  describe('rate limits follow the matched route', () => {
    it('limits a percent-encoded path exactly like the plain one', async () => {
      system = await startSystem({ workers: 0, env: { API_RATE_LIMIT_PER_MINUTE: '3' } });
      const key = { 'x-api-key': system.apiKey };
      const statuses = [];
      for (const path of ['/v1/account', '/%761/account', '/v%31/account', '/%761/account'])
        statuses.push((await get(system, path, key)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
    });

    it("limits a review link reached through an encoded path like the link's own", async () => {
      system = await startSystem({ workers: 0, env: { REVIEW_RATE_LIMIT_PER_MINUTE: '2' } });
      const batch = await postBatch(system, { items: [{ image_url: 'https://images.example.com/shoe.jpg' }] });
      const link = await callApi(system, 'POST', `/v1/batches/${batch.body.id}/review-link`);
      const path = new URL(String(link.body.url)).pathname;
      const statuses = [];
      for (const spelling of [path, path.replace('/review/', '/%72eview/'), path.replace('/review/', '/r%65view/')])
        statuses.push((await get(system, `${spelling}/data`)).status);
      expect(statuses).toEqual([200, 200, 429]);
    });
  });

  describe('failed authentication is limited per client address', () => {
    it('answers 429 with Retry-After once an address has failed too often, whatever keys it invents', async () => {
      system = await startSystem({ workers: 0, env: { AUTH_FAILURE_LIMIT_PER_MINUTE: '5' } });
      const statuses = [];
      for (let i = 0; i < 7; i++) statuses.push(await get(system, '/v1/jobs', { 'x-api-key': generateApiKey() }));
      expect(statuses.map((answer) => answer.status)).toEqual([401, 401, 401, 401, 401, 429, 429]);
      expect(Number(statuses[5]!.headers['retry-after'])).toBeGreaterThan(0);
      expect(statuses[5]!.body.error.code).toBe('rate_limited');
    });

    it('counts invented review links and bootstrap-style keys too', async () => {
      system = await startSystem({ workers: 0, env: { AUTH_FAILURE_LIMIT_PER_MINUTE: '3' } });
      const tries = [
        await get(system, '/v1/jobs', { 'x-api-key': `x${'y'.repeat(30)}` }),
        await get(system, '/v1/jobs', { 'x-api-key': 'rvw_notalink' }),
        await get(system, '/review/rvw_bAAAAAAAAAAAAAAAAAAAAAAAA.1.1.AAAAAAAAAAAAAAAAAAAAAA/data'),
        await get(system, '/v1/jobs', { 'x-api-key': `z${'y'.repeat(30)}` }),
      ];
      expect(tries.map((answer) => answer.status)).toEqual([401, 401, 401, 429]);
    });

    it('ignores X-Forwarded-For unless TRUST_PROXY says the proxy may set it', async () => {
      system = await startSystem({ workers: 0, env: { AUTH_FAILURE_LIMIT_PER_MINUTE: '2' } });
      const spoofed = [];
      for (let i = 0; i < 3; i++)
        spoofed.push(
          (await get(system, '/v1/jobs', { 'x-api-key': generateApiKey(), 'x-forwarded-for': `203.0.113.${i}` }))
            .status,
        );
      expect(spoofed).toEqual([401, 401, 429]);
      await system.close();

      system = await startSystem({ workers: 0, env: { AUTH_FAILURE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: '127.0.0.1' } });
      const proxied = [];
      for (let i = 0; i < 3; i++)
        proxied.push(
          (await get(system, '/v1/jobs', { 'x-api-key': generateApiKey(), 'x-forwarded-for': `203.0.113.${i}` }))
            .status,
        );
      const sameClient = [];
      for (let i = 0; i < 3; i++)
        sameClient.push(
          (await get(system, '/v1/jobs', { 'x-api-key': generateApiKey(), 'x-forwarded-for': '198.51.100.7' })).status,
        );
      expect(proxied).toEqual([401, 401, 401]);
      expect(sameClient).toEqual([401, 401, 429]);
    });

    it('leaves valid keys from other addresses alone', async () => {
      system = await startSystem({ workers: 0, env: { AUTH_FAILURE_LIMIT_PER_MINUTE: '1', TRUST_PROXY: '127.0.0.1' } });
      for (let i = 0; i < 3; i++)
        await get(system, '/v1/jobs', { 'x-api-key': generateApiKey(), 'x-forwarded-for': '203.0.113.9' });
      expect(
        (await get(system, '/v1/jobs', { 'x-api-key': system.apiKey, 'x-forwarded-for': '198.51.100.1' })).status,
      ).toBe(200);
    });
  });

  describe('read-only keys stay read-only', () => {
    async function readOnlyKey(target: TestSystem) {
      return (
        await makeApiKeyStore({ redis: target.services.redis, prefix: target.config.redis.prefix }).create({
          tenantId: target.tenantId,
          scopes: ['jobs:read'],
        })
      ).key;
    }

    it('cannot mint or revoke review links, or rotate the signing secret', async () => {
      system = await startSystem({ workers: 0 });
      const key = await readOnlyKey(system);
      const batch = await postBatch(system, { items: [{ image_url: 'https://images.example.com/shoe.jpg' }] });
      const job = (await callApi(system, 'GET', `/v1/batches/${batch.body.id}/jobs`)).body.data[0].id as string;
      const answers = [
        await callApi(system, 'POST', `/v1/batches/${batch.body.id}/review-link`, { key }),
        await callApi(system, 'POST', `/v1/jobs/${job}/review-link`, { key }),
        await callApi(system, 'DELETE', `/v1/batches/${batch.body.id}/review-links`, { key }),
        await callApi(system, 'DELETE', `/v1/jobs/${job}/review-links`, { key }),
        await callApi(system, 'POST', '/v1/account/webhook-secret/rotate', { key }),
      ];
      expect(answers.map((answer) => [answer.status, answer.body.error?.code])).toEqual(
        Array(5).fill([403, 'insufficient_scope']),
      );
      expect((await callApi(system, 'POST', `/v1/batches/${batch.body.id}/review-link`)).status).toBe(201);
    });

    it('reads the account without the webhook signing secret', async () => {
      system = await startSystem({ workers: 0 });
      const readOnly = await callApi(system, 'GET', '/v1/account', { key: await readOnlyKey(system) });
      const full = await callApi(system, 'GET', '/v1/account');
      expect(readOnly.status).toBe(200);
      expect(readOnly.body).not.toHaveProperty('webhook_secret');
      expect(JSON.stringify(readOnly.body)).not.toContain('whsec_');
      expect(full.body.webhook_secret).toMatch(/^whsec_/);
    });
  });

  describe('review progress streams', () => {
    /** Opens the link's event stream; `ended` resolves with every event once the server closes it. */
    async function openStream(target: TestSystem, path: string) {
      const response = await request(`${target.apiUrl}${path}/events`);
      if (response.statusCode !== 200)
        return {
          status: response.statusCode,
          body: await response.body.text(),
          ended: Promise.resolve([] as Json[]),
          leave: () => undefined,
        };
      const ended = (async () => {
        let text = '';
        try {
          for await (const chunk of response.body) text += String(chunk);
        } catch {
          // the client left (leave())
        }
        return text
          .trim()
          .split('\n\n')
          .map((block) =>
            Object.fromEntries(
              block
                .split('\n')
                .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]),
            ),
          );
      })();
      return { status: 200, body: '', ended, leave: () => response.body.destroy() };
    }

    async function openBatchLink(target: TestSystem) {
      // No worker runs: the batch stays processing, so its stream stays open.
      const batch = await postBatch(target, { items: [{ image_url: 'https://images.example.com/shoe.jpg' }] });
      const link = await callApi(target, 'POST', `/v1/batches/${batch.body.id}/review-link`);
      return { batchId: String(batch.body.id), path: new URL(String(link.body.url)).pathname };
    }

    const within = <T>(promise: Promise<T>, ms: number, what: string) =>
      Promise.race([
        promise,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)),
      ]);

    it("ends an open stream within seconds once the link's links are revoked", async () => {
      system = await startSystem({ workers: 0 });
      const { batchId, path } = await openBatchLink(system);
      const stream = await openStream(system, path);
      expect(stream.status).toBe(200);
      await callApi(system, 'DELETE', `/v1/batches/${batchId}/review-links`);
      const events = await within(stream.ended, 10_000, 'the stream of a revoked link to end');
      expect(events.at(-1)).toMatchObject({ event: 'revoked' });
      expect(JSON.parse(events.at(-1)!.data).error.code).toBe('review_link_revoked');
    });

    it('refuses a stream beyond the per-link cap with 429, and admits one again when a stream closes', async () => {
      system = await startSystem({ workers: 0, env: { REVIEW_STREAMS_PER_LINK: '2' } });
      const { batchId, path } = await openBatchLink(system);
      const first = await openStream(system, path);
      const second = await openStream(system, path);
      const third = await openStream(system, path);
      expect([first.status, second.status, third.status]).toEqual([200, 200, 429]);
      expect(JSON.parse(third.body).error.code).toBe('rate_limited');
      // Another link to the same batch has streams of its own.
      const other = await callApi(system, 'POST', `/v1/batches/${batchId}/review-link`);
      const otherStream = await openStream(system, new URL(String(other.body.url)).pathname);
      expect(otherStream.status).toBe(200);
      first.leave();
      await first.ended;
      const again = await eventually(
        async () => {
          const next = await openStream(system!, path);
          return next.status === 200 ? next : undefined;
        },
        { describe: 'a stream admitted after one closed' },
      );
      expect(again.status).toBe(200);
    });

    it('ends a stream at its maximum age without an end event, telling the browser when to reconnect', async () => {
      system = await startSystem({ workers: 0, env: { REVIEW_STREAM_MAX_AGE: '1s' } });
      const { path } = await openBatchLink(system);
      const stream = await openStream(system, path);
      const events = await within(stream.ended, 10_000, 'the stream to reach its age limit');
      expect(events[0]).toHaveProperty('retry');
      expect(events.map((event) => event.event).filter(Boolean)).toEqual(['progress']);
      expect((await openStream(system, path)).status).toBe(200);
    });
  });
});
