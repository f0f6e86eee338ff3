import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, FormData } from 'undici';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { bullPrefix, makeStorage, randomBase62, type QueueName, type Storage } from '@cutout/shared/infra';
import { startEmulator, type RunningEmulator } from '../../apps/emulator/src/server.ts';
import type { FaultPatch } from '../../apps/emulator/src/faults.ts';
import type { StatsSnapshot } from '../../apps/emulator/src/stats.ts';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from '@cutout/shared/embedded-s3';
import { deleteKeysWithPrefix, freePort, stopAllProcesses } from '../helpers/processes.ts';
import {
  appProcessEnv,
  s3ClientFor,
  testRedis,
  testS3,
  uniquePrefix,
  type TestRedis,
  type TestS3,
} from '../helpers/services.ts';

/**
 * What the fault tests run their app processes against: Redis (the machine's, under a
 * prefix of this run's own), an S3 server and the ByByBG emulator, both in this process.
 */
export interface FaultStack {
  redisUrl: string;
  prefix: string;
  s3: TestS3;
  storage: Storage;
  emulator: RunningEmulator;
  tenantId: string;
  apiKey: string;
  /** The environment of an API or worker process of this stack, plus `extra`. */
  env(extra?: Record<string, string>): Record<string, string>;
  emulatorStats(): Promise<StatsSnapshot>;
  /** PUT /_faults on the emulator (a partial update). */
  setFaults(patch: FaultPatch): Promise<void>;
  /** PUT /_keys on the emulator: the ByByBG keys it accepts from now on. */
  setEmulatorKeys(keys: string[]): Promise<void>;
  /** The ByByBG key the processes of this stack use. */
  emulatorKey: string;
  /** With `restartableS3`: stops the S3 server (clients then get connection errors). */
  stopS3(): Promise<void>;
  /** With `restartableS3`: starts it again on the same port and directory. */
  startS3(): Promise<void>;
  /** BullMQ's counts of a queue (active, waiting, delayed, completed …). */
  queueCounts(queue: QueueName): Promise<Record<string, number>>;
  /** How often BullMQ found each remove-bg job stalled (its worker gone) and handed it on. */
  stalledCounts(ids: string[]): Promise<Record<string, number>>;
  /** Kills every process, then removes this run's keys, the emulator and the S3 server. */
  close(): Promise<void>;
}

export type Json = Record<string, any>;

export interface FaultStackOptions {
  /** A Redis of the test's own (e.g. one it kills), instead of the machine's. */
  redisUrl?: string;
  /** An in-process S3 server on a fixed port and directory, so `stopS3`/`startS3` can restart it. */
  restartableS3?: boolean;
}

export async function startFaultStack(faults: FaultPatch, options: FaultStackOptions = {}): Promise<FaultStack> {
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const redis: TestRedis = options.redisUrl
      ? { url: options.redisUrl, close: async () => undefined }
      : await testRedis();
    cleanups.push(() => redis.close());
    const restartable = options.restartableS3 ? await restartableS3() : undefined;
    const s3 = restartable?.s3 ?? (await testS3());
    cleanups.push(() => s3.close());
    const emulatorKey = `emu-${randomBase62(20)}`;
    const emulator = await startEmulator({
      keys: [emulatorKey],
      faults: { rateLimit: null, ...faults },
      logger: false,
    });
    cleanups.push(() => emulator.close());
    const prefix = uniquePrefix();
    // A Redis of the test's own goes away with the test's processes; the shared one is cleaned.
    if (!options.redisUrl) cleanups.push(() => deleteKeysWithPrefix(redis.url, prefix));
    const s3Client = s3ClientFor(s3);
    cleanups.push(async () => s3Client.destroy());
    const tenantId = 'acme';
    const apiKey = `ck_test_${randomBase62(32)}`;

    const base: Record<string, string> = {
      ...appProcessEnv({
        redisUrl: redis.url,
        prefix,
        s3,
        emulatorUrl: emulator.url,
        emulatorKey,
        apiKeys: `${tenantId}:${apiKey}`,
      }),
      // The emulator has no rate limit here: a known ceiling lets the workers use their whole
      // concurrency at once instead of discovering ByByBG's rate from 5 calls a second.
      BYBYBG_RATE_LIMIT: '1000',
    };

    return {
      redisUrl: redis.url,
      prefix,
      s3,
      storage: makeStorage({ client: s3Client, bucket: s3.bucket }),
      emulator,
      tenantId,
      apiKey,
      env: (extra = {}) => ({ ...base, ...extra }),
      emulatorKey,
      async emulatorStats() {
        const response = await request(`${emulator.url}/_stats`);
        return (await response.body.json()) as StatsSnapshot;
      },
      setFaults: (patch) => putJson(`${emulator.url}/_faults`, patch),
      setEmulatorKeys: (keys) => putJson(`${emulator.url}/_keys`, { keys }),
      stopS3: async () => {
        if (!restartable) throw new Error('startFaultStack: stopS3 needs restartableS3');
        await restartable.stop();
      },
      startS3: async () => {
        if (!restartable) throw new Error('startFaultStack: startS3 needs restartableS3');
        await restartable.start();
      },
      queueCounts: (name) =>
        withQueue(redis.url, prefix, name, (queue) =>
          queue.getJobCounts('active', 'waiting', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed'),
        ),
      stalledCounts: (ids) =>
        withQueue(redis.url, prefix, 'remove-bg', async (queue) => {
          const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
          return Object.fromEntries(ids.map((id, index) => [id, jobs[index]?.stalledCounter ?? 0]));
        }),
      async close() {
        await stopAllProcesses();
        await runAll(cleanups);
      },
    };
  } catch (error) {
    await runAll(cleanups);
    throw error;
  }
}

async function putJson(url: string, body: unknown): Promise<void> {
  const response = await request(url, {
    method: 'PUT',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`PUT ${url} answered ${response.statusCode}: ${text}`);
}

/** s3rver on a fixed port and directory: stopping and starting it keeps the objects and the endpoint. */
async function restartableS3(): Promise<{ s3: TestS3; stop(): Promise<void>; start(): Promise<void> }> {
  const directory = mkdtempSync(join(tmpdir(), 'cutout-s3-restart-'));
  const bucket = `t${randomBase62(12).toLowerCase()}`;
  const port = await freePort();
  let server: EmbeddedS3 | undefined = await startEmbeddedS3({ directory, bucket, port });
  const stop = async () => {
    const running = server;
    server = undefined;
    await running?.close();
  };
  const start = async () => {
    if (!server) server = await startEmbeddedS3({ directory, bucket, port });
  };
  return {
    s3: {
      endpoint: `http://127.0.0.1:${port}`,
      ...EMBEDDED_S3_CREDENTIALS,
      bucket,
      async close() {
        await stop();
        rmSync(directory, { recursive: true, force: true });
      },
    },
    stop,
    start,
  };
}

async function withQueue<T>(
  redisUrl: string,
  prefix: string,
  name: QueueName,
  use: (queue: Queue) => Promise<T>,
): Promise<T> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix: bullPrefix(prefix) });
  try {
    return await use(queue);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** Runs cleanups newest first, each even if an earlier one failed. */
async function runAll(cleanups: (() => Promise<void>)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => errors.push(error));
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
}

/** Distinct product photos (the object moves), so no job can reuse another's result. */
export async function distinctPhotos(count: number): Promise<Buffer[]> {
  return Promise.all(
    Array.from({ length: count }, (_, index) => {
      const left = 10 + ((index * 3) % 140);
      const top = 10 + Math.floor(index / 47) * 7;
      return productImage('png', { ...PRODUCT_SHOT, object: { ...PRODUCT_SHOT.object, left, top } });
    }),
  );
}

/** POST /v1/jobs; returns the job id. */
export async function submitJob(
  apiUrl: string,
  apiKey: string,
  photo: Buffer,
  fields: Record<string, string> = {},
): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([photo], { type: 'image/png' }), 'item.png');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const response = await request(`${apiUrl}/v1/jobs`, { method: 'POST', body: form, headers: { 'x-api-key': apiKey } });
  const body = (await response.body.json()) as Json;
  if (response.statusCode !== 202)
    throw new Error(`POST /v1/jobs answered ${response.statusCode}: ${JSON.stringify(body)}`);
  return String(body.id);
}

/** Submits every photo, a few at a time; returns the ids in order. */
export async function submitAll(
  apiUrl: string,
  apiKey: string,
  photos: Buffer[],
  fields: Record<string, string> = {},
  parallel = 8,
): Promise<string[]> {
  const ids: string[] = new Array(photos.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < photos.length) {
        const index = next++;
        ids[index] = await submitJob(apiUrl, apiKey, photos[index]!, fields);
      }
    }),
  );
  return ids;
}

export async function getJob(apiUrl: string, apiKey: string, id: string): Promise<Json> {
  const response = await request(`${apiUrl}/v1/jobs/${id}`, { headers: { 'x-api-key': apiKey } });
  const body = (await response.body.json()) as Json;
  if (response.statusCode !== 200)
    throw new Error(`GET /v1/jobs/${id} answered ${response.statusCode}: ${JSON.stringify(body)}`);
  return body;
}

export async function getJobs(apiUrl: string, apiKey: string, ids: string[]): Promise<Json[]> {
  return Promise.all(ids.map((id) => getJob(apiUrl, apiKey, id)));
}

/**
 * Polls `probe` until it returns a value (not undefined). The timeout is a safety limit
 * only; `describe` says what was last seen when it is hit.
 */
export async function waitUntil<T>(
  probe: () => Promise<T | undefined>,
  { timeoutMs, intervalMs = 50, describe }: { timeoutMs: number; intervalMs?: number; describe: () => string },
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms: ${describe()}`);
    await sleep(intervalMs);
  }
}

/** `{ queued: 3, succeeded: 5 }`: how often each value occurs, for assertions and failure messages. */
export function countBy(values: unknown[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1;
  return counts;
}

export const statusCounts = (views: Json[]): Record<string, number> => countBy(views.map((view) => view.status));

const ENDED = new Set(['succeeded', 'failed', 'canceled']);

/** Polls the API until every job has ended (50 requests at a time); returns the final views. */
export async function waitForJobsToEnd(
  apiUrl: string,
  apiKey: string,
  ids: string[],
  timeoutMs: number,
): Promise<Json[]> {
  let views: Json[] = [];
  return waitUntil(
    async () => {
      views = [];
      for (let i = 0; i < ids.length; i += 50) views.push(...(await getJobs(apiUrl, apiKey, ids.slice(i, i + 50))));
      return views.every((view) => ENDED.has(String(view.status))) ? views : undefined;
    },
    { timeoutMs, intervalMs: 200, describe: () => `jobs not all ended: ${JSON.stringify(statusCounts(views))}` },
  );
}

/**
 * One line per scenario with the numbers docs/RELIABILITY.md quotes, e.g.
 * `RELIABILITY worker-sigkill accepted=500 succeeded=500 lost=0 …`.
 */
export function printSummary(scenario: string, numbers: Record<string, number | string>): void {
  console.log(
    `RELIABILITY ${scenario} ${Object.entries(numbers)
      .map(([name, value]) => `${name}=${value}`)
      .join(' ')}`,
  );
}
