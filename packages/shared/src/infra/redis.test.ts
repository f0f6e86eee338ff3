import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import {
  RedisEvictionPolicyError,
  RedisUnavailableError,
  connectChecked,
  createRedis,
  evictionPolicy,
  redactUrl,
  type Redis,
} from './redis.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const clients: Redis[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const client of clients) client.disconnect();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }
});

function client(url: string): Redis {
  const redis = createRedis(url, { connectionName: 'cutout-redis-test' });
  // connectChecked reports failures by throwing; without a listener ioredis also prints them.
  redis.on('error', () => undefined);
  clients.push(redis);
  return redis;
}

/** A port nothing listens on: bound by the OS, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts a throwaway redis-server with `args` and waits until it answers PING. */
async function startRedisServer(args: string[]): Promise<string> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    {
      stdio: 'ignore',
    },
  );
  children.push(child);
  const url = `redis://127.0.0.1:${port}`;
  await expect
    .poll(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        const probe = createRedis(url);
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          return await probe.ping();
        } catch {
          return 'not yet';
        } finally {
          probe.disconnect();
        }
      },
      { timeout: 10_000, interval: 100 },
    )
    .toBe('PONG');
  return url;
}

describe('connectChecked', () => {
  it('connects to the local Redis, which does not evict', async () => {
    const redis = client(REDIS_URL);

    await connectChecked(redis, REDIS_URL);

    expect(await redis.ping()).toBe('PONG');
    expect(await evictionPolicy(redis)).toBe('noeviction');
  });

  it('throws RedisUnavailableError naming the URL without its password when nothing listens', async () => {
    const port = await freePort();
    const url = `redis://user:pass@127.0.0.1:${port}`;
    const redis = client(url);

    const error = await connectChecked(redis, url).then(
      () => undefined,
      (caught: unknown) => caught,
    );

    expect(error).toBeInstanceOf(RedisUnavailableError);
    const message = (error as Error).message;
    expect(message).toContain(`127.0.0.1:${port}`);
    expect(message).not.toContain('pass');
  });

  it('refuses a Redis that may evict keys, naming its policy', async () => {
    const url = await startRedisServer(['--maxmemory-policy', 'allkeys-lru']);
    const redis = client(url);

    const error = await connectChecked(redis, url).then(
      () => undefined,
      (caught: unknown) => caught,
    );

    expect(error).toBeInstanceOf(RedisEvictionPolicyError);
    expect((error as RedisEvictionPolicyError).policy).toBe('allkeys-lru');
    expect((error as Error).message).toContain('allkeys-lru');
    expect((error as Error).message).toContain('noeviction');
  });
});

describe('redactUrl', () => {
  it('hides the user and password and keeps the host', () => {
    expect(redactUrl('redis://user:s3cret@redis.internal:6380/2')).toBe('redis://[REDACTED]@redis.internal:6380/2');
    expect(redactUrl('rediss://:s3cret@redis.internal:6380')).toBe('rediss://[REDACTED]@redis.internal:6380');
  });

  it('leaves a URL without credentials unchanged', () => {
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});
