import { afterEach, describe, expect, it } from 'vitest';
import { freePort, spawnApp, startRedisServer, stopAllProcesses, type RunningProcess } from '../helpers/processes.ts';

/**
 * The API and the worker refuse to start, with a message an operator can act on,
 * instead of running half-configured. Each case starts the real processes.
 */

const TIMEOUT = 120_000;
const EXIT_WITHIN_MS = 60_000;

/** Everything the processes need apart from Redis, so only the case under test is wrong. */
const BASE_ENV = {
  LOG_LEVEL: 'info',
  PORT: '0',
  HOST: '127.0.0.1',
  S3_ENDPOINT: 'http://127.0.0.1:9',
  S3_BUCKET: 'cutout-refusals',
  S3_ACCESS_KEY_ID: 'test',
  S3_SECRET_ACCESS_KEY: 'test-secret',
  API_KEYS: 'acme:ck_test_refusals_0123456789abcdef',
  BYBYBG_API_URL: 'http://127.0.0.1:9',
  BYBYBG_API_KEY: 'emu-refusals-key-0123456789',
};

const closedPortUrl = async () => `redis://127.0.0.1:${await freePort()}`;

/** Starts the API and the worker side by side and waits for both to exit. */
async function runBoth(env: Record<string, string>): Promise<{ name: string; code: number | null; output: string }[]> {
  const children: RunningProcess[] = [spawnApp('api', env), spawnApp('worker', env)];
  return Promise.all(
    children.map(async (child) => {
      const exit = await child.waitForExit(EXIT_WITHIN_MS);
      return { name: child.name, code: exit.code, output: child.output() };
    }),
  );
}

describe('start-up refusals', () => {
  afterEach(async () => {
    await stopAllProcesses();
  });

  it(
    'exits 1 and says how to start Redis when Redis is not reachable',
    async () => {
      const results = await runBoth({ ...BASE_ENV, REDIS_URL: await closedPortUrl() });
      for (const { name, code, output } of results) {
        expect(code, `${name} exit code; output:\n${output}`).toBe(1);
        expect(output, name).toMatch(/docker compose up -d redis|REDIS_URL/);
      }
    },
    TIMEOUT,
  );

  it(
    'exits 1 and names noeviction when Redis may evict keys',
    async () => {
      const redis = await startRedisServer(['--maxmemory-policy', 'allkeys-lru'], 'redis-allkeys-lru');
      try {
        const results = await runBoth({ ...BASE_ENV, REDIS_URL: redis.url });
        for (const { name, code, output } of results) {
          expect(code, `${name} exit code; output:\n${output}`).toBe(1);
          expect(output, name).toContain('noeviction');
          expect(output, name).toContain('allkeys-lru');
        }
      } finally {
        redis.process.killGroup('SIGKILL');
        await redis.process.exited;
      }
    },
    TIMEOUT,
  );

  it(
    'exits 1 with one message listing every invalid variable',
    async () => {
      const results = await runBoth({
        ...BASE_ENV,
        REDIS_URL: await closedPortUrl(),
        PORT: 'abc',
        JOB_RETENTION: '7y',
      });
      for (const { name, code, output } of results) {
        expect(code, `${name} exit code; output:\n${output}`).toBe(1);
        const message = configMessage(output);
        expect(message, `${name} output:\n${output}`).toContain('PORT');
        expect(message, name).toContain('JOB_RETENTION');
        // Refused before connecting anywhere: no Redis error follows the config message.
        expect(output, name).not.toMatch(/Redis is not reachable/);
      }
    },
    TIMEOUT,
  );

  it(
    'refuses to start a worker without BYBYBG_API_KEY',
    async () => {
      const { BYBYBG_API_KEY: _unused, ...env } = BASE_ENV;
      const worker = spawnApp('worker', { ...env, REDIS_URL: await closedPortUrl() });
      const exit = await worker.waitForExit(EXIT_WITHIN_MS);
      expect(exit.code, worker.output()).toBe(1);
      expect(configMessage(worker.output()), worker.output()).toContain('BYBYBG_API_KEY');
      expect(worker.output()).not.toMatch(/Redis is not reachable/);
    },
    TIMEOUT,
  );
});

/** The block that starts with "Invalid configuration" (one message, one problem per line). */
function configMessage(output: string): string {
  const start = output.indexOf('Invalid configuration');
  expect(start, `no "Invalid configuration" message in:\n${output}`).toBeGreaterThanOrEqual(0);
  expect(output.indexOf('Invalid configuration', start + 1), 'the problems are reported in one message').toBe(-1);
  return output.slice(start);
}
