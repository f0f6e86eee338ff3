import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { makeStorage, randomBase62, type Storage } from '@cutout/shared/infra';
import { startEmulator, type RunningEmulator } from '../../apps/emulator/src/server.ts';
import type { FaultPatch } from '../../apps/emulator/src/faults.ts';
import type { StatsSnapshot } from '../../apps/emulator/src/stats.ts';
import {
  deleteKeysWithPrefix,
  spawnProcess,
  startApiProcess,
  startWorkerProcess,
  waitForHttp,
  type RunningProcess,
} from '../../test/helpers/processes.ts';
import {
  appProcessEnv,
  s3ClientFor,
  testRedis,
  testS3,
  type TestRedis,
  type TestS3,
} from '../../test/helpers/services.ts';
import { submitJob, type Json } from '../../test/faults/stack.ts';
import { startBenchReceiver, type BenchReceiver } from './receiver.ts';

/**
 * One scenario's world: the machine's Redis under a prefix of its own, an in-process S3
 * server, the ByByBG emulator and a webhook receiver in this process; the API and the
 * workers as real child processes, started on demand.
 */
export interface BenchStack {
  prefix: string;
  redisUrl: string;
  redis: Redis;
  s3: TestS3;
  storage: Storage;
  emulator: RunningEmulator;
  emulatorKey: string;
  receiver: BenchReceiver;
  apiKey: string;
  env(extra?: Record<string, string>): Record<string, string>;
  startApi(extra?: Record<string, string>): Promise<{ process: RunningProcess; url: string }>;
  startWorkers(count: number, extra?: Record<string, string>): Promise<RunningProcess[]>;
  setFaults(faults: FaultPatch): Promise<void>;
  emulatorStats(): Promise<StatsSnapshot>;
  resetEmulatorStats(): Promise<void>;
  close(): Promise<void>;
}

export async function startBenchStack(faults: FaultPatch = {}): Promise<BenchStack> {
  const cleanups: (() => Promise<void>)[] = [];
  const processes: RunningProcess[] = [];
  try {
    const testedRedis: TestRedis = await testRedis();
    cleanups.push(() => testedRedis.close());
    const redis = new Redis(testedRedis.url, { maxRetriesPerRequest: 3 });
    cleanups.push(async () => redis.disconnect());
    const s3 = await testS3();
    cleanups.push(() => s3.close());
    const emulatorKey = `emu-${randomBase62(20)}`;
    const emulator = await startEmulator({
      keys: [emulatorKey],
      faults: { rateLimit: null, ...faults },
      logger: false,
    });
    cleanups.push(() => emulator.close());
    const receiver = await startBenchReceiver();
    cleanups.push(() => receiver.close());
    const prefix = `cutout-bench-${randomBase62(10)}`;
    cleanups.push(() => deleteKeysWithPrefix(testedRedis.url, prefix));
    const s3Client = s3ClientFor(s3);
    cleanups.push(async () => s3Client.destroy());
    const storage = makeStorage({ client: s3Client, bucket: s3.bucket });
    await storage.ensureBucket();
    const apiKey = `ck_bench_${randomBase62(32)}`;

    const base = appProcessEnv({
      redisUrl: testedRedis.url,
      prefix,
      s3,
      emulatorUrl: emulator.url,
      emulatorKey,
      apiKeys: `bench:${apiKey}`,
    });
    const env = (extra: Record<string, string> = {}) => {
      const merged = { ...base, ...extra };
      // An empty value removes the variable (e.g. BYBYBG_RATE_LIMIT for discovery).
      for (const [name, value] of Object.entries(merged)) if (value === '') delete merged[name];
      return merged;
    };
    const admin = async (method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown) => {
      const response = await request(`${emulator.url}${path}`, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      });
      const text = await response.body.text();
      if (response.statusCode >= 300)
        throw new Error(`emulator ${method} ${path} answered ${response.statusCode}: ${text}`);
      return text ? (JSON.parse(text) as unknown) : undefined;
    };

    return {
      prefix,
      redisUrl: testedRedis.url,
      redis,
      s3,
      storage,
      emulator,
      emulatorKey,
      receiver,
      apiKey,
      env,
      async startApi(extra = {}) {
        const api = process.env.BENCH_CPU_PROF
          ? await startProfiledApi(env(extra), process.env.BENCH_CPU_PROF)
          : await startApiProcess(env(extra), 'api');
        processes.push(api.process);
        return api;
      },
      async startWorkers(count, extra = {}) {
        const started = await Promise.all(
          Array.from({ length: count }, (_, index) => startWorkerProcess(env(extra), `worker-${index + 1}`)),
        );
        processes.push(...started);
        return started;
      },
      setFaults: async (patch) => void (await admin('PUT', '/_faults', patch)),
      emulatorStats: async () => (await admin('GET', '/_stats')) as StatsSnapshot,
      resetEmulatorStats: async () => void (await admin('POST', '/_stats/reset')),
      async close() {
        // SIGTERM first, so a process run with --cpu-prof writes its profile; SIGKILL what is left.
        for (const child of processes) child.kill('SIGTERM');
        await Promise.race([Promise.all(processes.map((child) => child.exited)), sleep(10_000)]);
        for (const child of processes) child.killGroup('SIGKILL');
        await Promise.race([Promise.all(processes.map((child) => child.exited)), sleep(5_000)]);
        const errors: unknown[] = [];
        for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => errors.push(error));
        if (errors.length > 0) throw new AggregateError(errors, 'bench stack cleanup failed');
      },
    };
  } catch (error) {
    for (const child of processes) child.killGroup('SIGKILL');
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    throw error;
  }
}

/** The API under `node --cpu-prof` (BENCH_CPU_PROF=<dir>): the profile is written when it exits on SIGTERM. */
async function startProfiledApi(
  env: Record<string, string>,
  directory: string,
): Promise<{ process: RunningProcess; url: string }> {
  const api = spawnProcess({
    name: 'api',
    command: process.execPath,
    args: ['--cpu-prof', '--cpu-prof-dir', directory, 'apps/api/src/main.ts'],
    env: { PORT: '0', HOST: '127.0.0.1', ...env },
  });
  const url = String((await api.waitForLog('api listening', 60_000)).url);
  await waitForHttp(`${url}/healthz`, { process: api });
  return { process: api, url };
}

// Bench scenarios submit photos exactly as the fault tests do.
export { submitJob, type Json };

/** Statuses of many jobs, 50 requests at a time. */
export async function jobStatuses(apiUrl: string, apiKey: string, ids: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let index = 0; index < ids.length; index += 50) {
    const views = await Promise.all(
      ids.slice(index, index + 50).map(async (id) => {
        const response = await request(`${apiUrl}/v1/jobs/${id}`, { headers: { 'x-api-key': apiKey } });
        return (await response.body.json()) as Json;
      }),
    );
    for (const view of views) counts[String(view.status)] = (counts[String(view.status)] ?? 0) + 1;
  }
  return counts;
}
