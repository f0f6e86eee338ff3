import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.ts';

export type { Redis } from 'ioredis';

export interface RedisTarget {
  url: string;
  /** Seed nodes of a Redis Cluster; empty or absent means the single Redis at `url`. */
  clusterNodes?: readonly { host: string; port: number }[];
}

export interface RedisConnectOptions {
  /** BullMQ workers block on Redis and need this unset (`null`). */
  blocking?: boolean;
  connectionName?: string;
  /** Where connection errors go (at most one line per 10 s); commands still fail on their own. */
  log?: Logger;
}

const ERROR_LOG_INTERVAL_MS = 10_000;

/** A lazily connecting client; `await redis.connect()` or the first command opens it. */
export function createRedis(
  target: string | RedisTarget,
  { blocking = false, connectionName, log }: RedisConnectOptions = {},
): Redis {
  const { url, clusterNodes = [] } = typeof target === 'string' ? { url: target } : target;
  const options: RedisOptions = {
    lazyConnect: true,
    connectionName,
    maxRetriesPerRequest: blocking ? null : 2,
    // API processes must answer 503 quickly while Redis is down, not queue commands forever.
    enableOfflineQueue: blocking,
    enableAutoPipelining: !blocking,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  };
  // A Cluster speaks the same commands as one Redis. It is typed as Redis so that every
  // store (many typed against ioredis' Redis) takes either; the few places that must tell
  // them apart (INFO per master, SCAN) use `asCluster`.
  const redis =
    clusterNodes.length > 0
      ? (new Cluster([...clusterNodes], clusterOptions(url, options)) as unknown as Redis)
      : new Redis(url, options);
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
  readonly policy: string;
  constructor(policy: string) {
    super(
      `Redis maxmemory-policy is "${policy}"; Cutout needs "noeviction" so queued jobs are never evicted. ` +
        'Run: redis-cli CONFIG SET maxmemory-policy noeviction (and set it in redis.conf).',
    );
    this.name = 'RedisEvictionPolicyError';
    this.policy = policy;
  }
}

/**
 * The cluster's own options plus those of every node connection. Credentials and TLS
 * (`rediss://`) come from REDIS_URL and apply to every node, as managed clusters use one
 * password for all of them.
 */
function clusterOptions(
  url: string,
  { lazyConnect, enableOfflineQueue, retryStrategy, ...nodeOptions }: RedisOptions,
): ClusterOptions {
  const { username, password, protocol } = new URL(url);
  return {
    lazyConnect,
    enableOfflineQueue,
    clusterRetryStrategy: retryStrategy,
    redisOptions: {
      ...nodeOptions,
      ...(username ? { username: decodeURIComponent(username) } : {}),
      ...(password ? { password: decodeURIComponent(password) } : {}),
      ...(protocol === 'rediss:' ? { tls: {} } : {}),
    },
  };
}

/** The Cluster behind a client from `createRedis`, or undefined for a single Redis. */
export function asCluster(redis: Redis): Cluster | undefined {
  const client: unknown = redis;
  return client instanceof Cluster ? client : undefined;
}

/** How a target is named in messages: the URL without its password, or the cluster's seed nodes. */
function describeRedisTarget(target: string | RedisTarget): string {
  if (typeof target === 'string') return redactUrl(target);
  const nodes = target.clusterNodes ?? [];
  return nodes.length > 0
    ? `cluster ${nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`
    : redactUrl(target.url);
}

export const redactUrl = (url: string): string => url.replace(/\/\/([^@/]*)@/, '//[REDACTED]@');

/** Connects once (no retry loop) and checks the eviction policy; throws a clear error otherwise. */
export async function connectChecked(redis: Redis, target: string | RedisTarget): Promise<void> {
  try {
    if (redis.status === 'wait') await redis.connect();
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new RedisUnavailableError(describeRedisTarget(target), error);
  }
  const policy = await evictionPolicy(redis);
  if (policy !== 'noeviction') {
    redis.disconnect();
    throw new RedisEvictionPolicyError(policy);
  }
}

/**
 * Reads `maxmemory_policy` from INFO, which managed Redis services allow where CONFIG is
 * disabled. On a Cluster every master holds part of the queues, so each is asked; the
 * first policy that is not noeviction is the answer.
 */
export async function evictionPolicy(redis: Redis): Promise<string> {
  const nodes = asCluster(redis)?.nodes('master') ?? [redis];
  if (nodes.length === 0) throw new Error('Redis Cluster has no reachable master');
  const policies = await Promise.all(
    nodes.map(async (node) => /maxmemory_policy:(\S+)/.exec(await node.info('memory'))?.[1] ?? 'unknown'),
  );
  return policies.find((policy) => policy !== 'noeviction') ?? 'noeviction';
}
