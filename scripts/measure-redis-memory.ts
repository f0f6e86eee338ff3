/**
 * How much Redis memory a finished job costs, for sizing (docs/OPERATIONS.md).
 *
 *   node scripts/measure-redis-memory.ts [jobs=300]
 *
 * Runs `jobs` distinct photos, each with a webhook, through the real API and worker
 * against the Redis at REDIS_URL (default 127.0.0.1:6379) under a prefix of its own, with
 * the embedded S3 server and the ByByBG emulator. When every job has succeeded and every
 * webhook has been delivered, it sums `MEMORY USAGE <key> SAMPLES 0` over every key of the
 * prefix, grouped by what the key holds, divides by `jobs`, and deletes the keys.
 */
import '../test/helpers/undici-dispatcher.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { FormData, request } from 'undici';
import { Redis } from 'ioredis';
import { createLogger, loadConfig, randomBase62 } from '@cutout/shared/infra';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3 } from '@cutout/shared/embedded-s3';
import { startApi } from '../apps/api/src/server.ts';
import { startWorker } from '../apps/worker/src/server.ts';
import { startEmulator } from '../apps/emulator/src/server.ts';

const JOBS = Number(process.argv[2] ?? 300);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `cutout-measure-${randomBase62(8)}`;

/** What a key holds, from its name: one group per kind of data. */
const GROUPS: [RegExp, string][] = [
  [/:job:[^:]+:webhook-attempts$/, 'webhook attempt log'],
  [/:job:[^:]+$/, 'job record'],
  [/:bull:remove-bg:(job_[^:]+)$/, 'BullMQ remove-bg job'],
  [/:bull:webhooks:(?!events$|completed$|failed$|meta$|id$|stalled-check$)[^:]+$/, 'BullMQ webhooks job'],
  [/:bull:[^:]+:(events)$/, 'BullMQ event streams (capped)'],
  [/:bull:/, 'BullMQ queue bookkeeping (completed sets, meta)'],
  [/:dedup:/, 'duplicate-image claim'],
  [/:tenant:[^:]+:jobs$/, 'tenant job index'],
];

const directory = mkdtempSync(join(tmpdir(), 'cutout-measure-'));
const s3 = await startEmbeddedS3({ directory, bucket: 'measure' });
const emulatorKey = `emu-${randomBase62(16)}`;
const emulator = await startEmulator({ keys: [emulatorKey], faults: { rateLimit: null }, logger: false });
const receiver = createServer((req, res) => req.resume().on('end', () => res.writeHead(204).end()));
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const apiKey = `ck_measure_${randomBase62(32)}`;
const config = loadConfig(
  {
    REDIS_URL,
    REDIS_PREFIX: prefix,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: 'measure',
    S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    BYBYBG_API_URL: emulator.url,
    BYBYBG_API_KEY: emulatorKey,
    BYBYBG_RATE_LIMIT: '1000',
    WORKER_CONCURRENCY: '16',
    PORT: '0',
    API_KEYS: `acme:${apiKey}`,
    API_RATE_LIMIT_PER_MINUTE: '1000000',
    WEBHOOK_ALLOW_PRIVATE: '127.0.0.0/8',
    LOG_LEVEL: 'silent',
  },
  { bybybgKey: true },
);
const log = createLogger({ level: 'silent', name: 'measure' });
const api = await startApi(config, log);
const worker = await startWorker(config, log, { serveMetrics: false });
const redis = new Redis(REDIS_URL);

try {
  const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const ids: string[] = [];
  for (let index = 0; index < JOBS; index++) ids.push(await submit(api.url, await photo(index), webhookUrl));
  await waitForAll(ids);

  const usage = new Map<string, { keys: number; bytes: number }>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    for (const key of keys) {
      const bytes = Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
      const group = GROUPS.find(([pattern]) => pattern.test(key))?.[1] ?? 'other (API keys, tenant, upstream state)';
      const entry = usage.get(group) ?? { keys: 0, bytes: 0 };
      usage.set(group, { keys: entry.keys + 1, bytes: entry.bytes + bytes });
    }
    cursor = next;
  } while (cursor !== '0');

  const total = [...usage.values()].reduce((sum, { bytes }) => sum + bytes, 0);
  console.log(
    `Redis ${(await redis.info('server')).match(/redis_version:(\S+)/)?.[1]}, ${JOBS} finished jobs with one delivered webhook each:`,
  );
  for (const [group, { keys, bytes }] of [...usage].sort((a, b) => b[1].bytes - a[1].bytes)) {
    console.log(
      `  ${group.padEnd(50)} ${String(keys).padStart(6)} keys ${String(Math.round(bytes / JOBS)).padStart(7)} bytes/job`,
    );
  }
  console.log(`  ${'total'.padEnd(50)} ${' '.repeat(11)} ${String(Math.round(total / JOBS)).padStart(7)} bytes/job`);
} finally {
  await worker.close();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  await api.close();
  redis.disconnect();
  await emulator.close();
  await s3.close();
  receiver.close();
  rmSync(directory, { recursive: true, force: true });
}

/** A product shot whose object moves with `index`, so no two are duplicates. */
async function photo(index: number): Promise<Buffer> {
  const object = await sharp({ create: { width: 60, height: 60, channels: 3, background: { r: 200, g: 30, b: 30 } } })
    .png()
    .toBuffer();
  return sharp({ create: { width: 200, height: 150, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite([{ input: object, left: 10 + (index % 120), top: 10 + (Math.floor(index / 120) % 80) }])
    .png()
    .toBuffer();
}

async function submit(apiUrl: string, image: Buffer, webhookUrl: string): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([image], { type: 'image/png' }), 'photo.png');
  form.append('webhook_url', webhookUrl);
  form.append('metadata', JSON.stringify({ sku: `SKU-${randomBase62(8)}` }));
  const response = await request(`${apiUrl}/v1/jobs`, { method: 'POST', body: form, headers: { 'x-api-key': apiKey } });
  const body = (await response.body.json()) as { id: string };
  if (response.statusCode !== 202)
    throw new Error(`POST /v1/jobs answered ${response.statusCode}: ${JSON.stringify(body)}`);
  return body.id;
}

/** Until every job succeeded and its webhook was delivered. */
async function waitForAll(ids: string[]): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const views = await Promise.all(
      ids.map(async (id) => {
        const response = await request(`${api.url}/v1/jobs/${id}`, { headers: { 'x-api-key': apiKey } });
        return (await response.body.json()) as { status: string; webhook?: { state: string } };
      }),
    );
    if (views.every((view) => view.status === 'succeeded' && view.webhook?.state === 'delivered')) return;
    if (views.some((view) => view.status === 'failed'))
      throw new Error('a job failed; the measurement needs succeeded jobs');
    if (Date.now() > deadline) throw new Error('jobs did not finish within 10 minutes');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
