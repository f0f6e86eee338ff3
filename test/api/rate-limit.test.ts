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

  it('fails closed with 503 when Redis cannot count', async () => {
    const redis = await startRedisServer(['--save', '', '--appendonly', 'no']);
    system = await startSystem({ workers: 0, env: { REDIS_URL: redis.url } });
    expect((await get(system, '/v1/jobs', system.apiKey)).status).toBe(200);
    redis.process.kill('SIGKILL');
    await redis.process.exited;
    const down = await get(system, '/v1/jobs', system.apiKey);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe('service_unavailable');
  });
});
