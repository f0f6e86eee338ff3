import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startRedisServer, stopAllProcesses } from '../helpers/processes.ts';

async function get(system: TestSystem, path: string, key: string) {
  const response = await request(`${system.apiUrl}${path}`, { headers: { 'x-api-key': key } });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: text ? JSON.parse(text) : null };
}

describe('per-key rate limit on the API', () => {
  let system: TestSystem | undefined;
  afterEach(async () => {
    await system?.close().catch(() => undefined);
    system = undefined;
  });
  afterAll(async () => {
    await stopAllProcesses();
  });

  it('answers 429 with Retry-After and X-RateLimit-* once a key has used its allowance, other keys unaffected', async () => {
    system = await startSystem({ workers: 0, env: { API_RATE_LIMIT_PER_MINUTE: '3' } });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await get(system, '/v1/jobs', system.apiKey));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
    expect(answers[0]!.headers['x-ratelimit-limit']).toBe('3');
    expect(answers[0]!.headers['x-ratelimit-remaining']).toBe('2');
    expect(Number(answers[3]!.headers['retry-after'])).toBeGreaterThan(0);
    expect(answers[3]!.body.error.code).toBe('rate_limited');
    expect((await get(system, '/v1/jobs', system.otherApiKey)).status).toBe(200);
    expect((await request(`${system.apiUrl}/healthz`)).statusCode).toBe(200);
  });

  it("counts status polls against the same allowance as every other route, in the poll's one command", async () => {
    system = await startSystem({ workers: 0, env: { API_RATE_LIMIT_PER_MINUTE: '6' } });
    const created = await request(`${system.apiUrl}/v1/batches`, {
      method: 'POST',
      headers: { 'x-api-key': system.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ items: [{ image_url: 'https://images.example.com/shoe.jpg' }] }),
    });
    expect(created.statusCode).toBe(202);
    const batch = (await created.body.json()) as { id: string };
    const page = await get(system, `/v1/batches/${batch.id}/jobs`, system.apiKey);
    const job = page.body.data[0] as { id: string };
    const poll = await get(system, `/v1/jobs/${job.id}`, system.apiKey);
    expect([poll.status, poll.headers['x-ratelimit-limit'], poll.headers['x-ratelimit-remaining']]).toEqual([
      200,
      '6',
      '3',
    ]);
    expect(Number(poll.headers['x-ratelimit-reset'])).toBeGreaterThan(0);
    // A missing job is counted too, and the list (counted by the plugin) shares the allowance.
    expect((await get(system, '/v1/jobs/job_doesnotexist0000000000', system.apiKey)).status).toBe(404);
    expect((await get(system, '/v1/jobs', system.apiKey)).status).toBe(200);
    const last = await get(system, `/v1/jobs/${job.id}`, system.apiKey);
    expect([last.status, last.headers['x-ratelimit-remaining']]).toEqual([200, '0']);
    const over = await get(system, `/v1/jobs/${job.id}`, system.apiKey);
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe('rate_limited');
    expect(over.body.id).toBeUndefined();
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.headers['x-ratelimit-remaining']).toBe('0');
    expect((await get(system, '/v1/jobs', system.apiKey)).status).toBe(429);
    // Another tenant's key has its own allowance, and still cannot see the job.
    expect((await get(system, `/v1/jobs/${job.id}`, system.otherApiKey)).status).toBe(404);
  });

  it('gives each review link an allowance of its own, apart from API keys', async () => {
    system = await startSystem({ workers: 0, env: { REVIEW_RATE_LIMIT_PER_MINUTE: '3' } });
    const post = async (path: string, body?: unknown) => {
      const response = await request(`${system!.apiUrl}${path}`, {
        method: 'POST',
        headers: { 'x-api-key': system!.apiKey, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return (await response.body.json()) as { id: string; url: string };
    };
    const batch = await post('/v1/batches', { items: [{ image_url: 'https://images.example.com/shoe.jpg' }] });
    const [first, second] = [
      await post(`/v1/batches/${batch.id}/review-link`),
      await post(`/v1/batches/${batch.id}/review-link`, { expires_in: 600 }),
    ];
    const open = async (link: string) => {
      const response = await request(`${system!.apiUrl}${new URL(link).pathname}/data`);
      await response.body.dump();
      return response.statusCode;
    };
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await open(first.url));
    expect(answers).toEqual([200, 200, 200, 429]);
    // The page itself says so as a page, with Retry-After.
    const page = await request(`${system.apiUrl}${new URL(first.url).pathname}`);
    expect([page.statusCode, page.headers['content-type'], Number(page.headers['retry-after']) > 0]).toEqual([
      429,
      'text/html; charset=utf-8',
      true,
    ]);
    expect(await page.body.text()).toContain('Too many requests with this link');
    expect(await open(second.url)).toBe(200);
    expect((await get(system, `/v1/batches/${batch.id}`, system.apiKey)).status).toBe(200);
    const asset = await request(`${system.apiUrl}/review/assets/review.js`);
    await asset.body.dump();
    expect(asset.statusCode).toBe(200);
  });

  it('fails closed with 503 when Redis cannot count', async () => {
    const redis = await startRedisServer(['--save', '', '--appendonly', 'no']);
    system = await startSystem({ workers: 0, env: { REDIS_URL: redis.url } });
    expect((await get(system, '/v1/jobs', system.apiKey)).status).toBe(200);
    redis.process.kill('SIGKILL');
    await redis.process.exited;
    const down = await get(system, '/v1/jobs', system.apiKey);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe('service_unavailable');
    const poll = await get(system, '/v1/jobs/job_doesnotexist0000000000', system.apiKey);
    expect([poll.status, poll.body.error.code]).toEqual([503, 'service_unavailable']);
  });
});
