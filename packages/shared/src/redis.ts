import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.ts';

export type { Redis } from 'ioredis';

export interface RedisConnectOptions {
  /** BullMQ workers block on Redis and need this unset (`null`). */
  blocking?: boolean;
  connectionName?: string;
  /** Where connection errors go (at most one line per 10 s); commands still fail on their own. */
  log?: Logger;
}

const ERROR_LOG_INTERVAL_MS = 10_000;

/** A lazily connecting client; `await redis.connect()` or the first command opens it. */
export function createRedis(url: string, { blocking = false, connectionName, log }: RedisConnectOptions = {}): Redis {
  const options: RedisOptions = {
    lazyConnect: true,
    connectionName,
    maxRetriesPerRequest: blocking ? null : 2,
    // API processes must answer 503 quickly while Redis is down, not queue commands forever.
    enableOfflineQueue: blocking,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  };
  const redis = new Redis(url, options);
  // Without a listener ioredis prints every reconnect failure with a stack trace.
  let lastLogged = 0;
  redis.on('error', (error: Error & { code?: string }) => {
    if (!log || Date.now() - lastLogged < ERROR_LOG_INTERVAL_MS) return;
    lastLogged = Date.now();
    log.warn({ code: error.code, connection: connectionName }, 'Redis connection problem; retrying');
  });
  return redis;
}

export class RedisUnavailableError extends Error {
  readonly url: string;
  constructor(url: string, cause: unknown) {
    super(`Redis is not reachable at ${redactUrl(url)}`, { cause });
    // The password never travels with the error, e.g. into a serialized log line.
    this.url = redactUrl(url);
    this.name = 'RedisUnavailableError';
  }
}

export class RedisEvictionPolicyError extends Error {
  constructor(readonly policy: string) {
    super(
      `Redis maxmemory-policy is "${policy}"; Cutout needs "noeviction" so queued jobs are never evicted. ` +
        'Run: redis-cli CONFIG SET maxmemory-policy noeviction (and set it in redis.conf).',
    );
    this.name = 'RedisEvictionPolicyError';
  }
}

export const redactUrl = (url: string): string => url.replace(/\/\/([^@/]*)@/, '//[REDACTED]@');

/** Connects once (no retry loop) and checks the eviction policy; throws a clear error otherwise. */
export async function connectChecked(redis: Redis, url: string): Promise<void> {
  try {
    if (redis.status === 'wait') await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new RedisUnavailableError(url, error);
  }
  const policy = await evictionPolicy(redis);
  if (policy !== 'noeviction') {
    redis.disconnect();
    throw new RedisEvictionPolicyError(policy);
  }
}

/** Reads `maxmemory_policy` from INFO, which managed Redis services allow where CONFIG is disabled. */
export async function evictionPolicy(redis: Redis): Promise<string> {
  const info = await redis.info('memory');
  return /maxmemory_policy:(\S+)/.exec(info)?.[1] ?? 'unknown';
}
