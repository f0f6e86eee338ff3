import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { startApiProcess, startWorkerProcess, stopAllProcesses } from '../helpers/processes.ts';
import { startFaultStack, waitUntil, type FaultStack, type Json } from './stack.ts';

/**
 * An API process killed while it writes a 100,000-row batch: the batch never runs half, and
 * never stays `creating`. The worker's sweep makes it `failed_to_create` (its items canceled,
 * none run) once its lease lapses; a retry with the same Idempotency-Key waits while the
 * lease runs, then replaces it with a complete batch.
 */

const ROWS = 100_000;
const BOUNDARY = 'killboundary';
const row = (i: number) => `https://cdn.example.com/catalog/SKU-${String(i).padStart(7, '0')}.jpg,sku-${i}\r\n`;

/** The manifest as a multipart body, sent slowly (`pauseMs` between slices) or all at once. */
async function* manifestBody(pauseMs: number): AsyncGenerator<Buffer> {
  yield Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="manifest"; filename="m.csv"\r\nContent-Type: text/csv\r\n\r\nimage_url,client_ref\r\n`,
  );
  for (let start = 0; start < ROWS; start += 1_000) {
    yield Buffer.from(Array.from({ length: 1_000 }, (_, i) => row(start + i)).join(''));
    if (pauseMs > 0) await sleep(pauseMs);
  }
  yield Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
}

async function postManifest(
  apiUrl: string,
  apiKey: string,
  { pauseMs = 0, key }: { pauseMs?: number; key?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Json }> {
  const response = await request(`${apiUrl}/v1/batches`, {
    method: 'POST',
    body: Readable.from(manifestBody(pauseMs)),
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
    headers: {
      'x-api-key': apiKey,
      'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
      ...(key ? { 'idempotency-key': key } : {}),
    },
  });
  return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as Json };
}

async function getBatch(apiUrl: string, apiKey: string, id: string): Promise<Json> {
  const response = await request(`${apiUrl}/v1/batches/${id}`, { headers: { 'x-api-key': apiKey } });
  return (await response.body.json()) as Json;
}

describe('an API killed while it writes a batch', () => {
  let stack: FaultStack;
  let redis: Redis;
  const env = (timeout = '2s') => stack.env({ BATCH_CREATION_TIMEOUT: timeout, MAINTENANCE_INTERVAL: '250ms' });

  beforeAll(async () => {
    stack = await startFaultStack({});
    redis = new Redis(stack.redisUrl);
  }, 60_000);
  afterEach(async () => {
    await stopAllProcesses();
  });
  afterAll(async () => {
    redis?.disconnect();
    await stack?.close();
  }, 60_000);

  /** Starts a slow creation, waits until it has written `atLeast` items, and SIGKILLs the API; the batch's id. */
  async function killMidCreation(key?: string, timeout?: string, atLeast = 5_000): Promise<string> {
    const api = await startApiProcess(env(timeout));
    const creating = postManifest(api.url, stack.apiKey, { pauseMs: 20, key }).catch(() => 'connection closed');
    const batchId = await waitUntil(
      async () => {
        const [id] = await redis.zrange(`${stack.prefix}:batches:creating`, '0', '0');
        return id && (await redis.llen(`${stack.prefix}:batch:${id}:items`)) >= atLeast ? id : undefined;
      },
      { timeoutMs: 60_000, describe: () => 'items written' },
    );
    api.process.kill('SIGKILL');
    await api.process.exited;
    expect(await creating).toBe('connection closed');
    return batchId;
  }

  it('leaves a batch that the sweep fails with what it had accepted, all canceled, none run', async () => {
    const batchId = await killMidCreation();
    const worker = await startWorkerProcess(env());
    const api = await startApiProcess(env());
    const failed = await waitUntil(
      async () => {
        const view = await getBatch(api.url, stack.apiKey, batchId);
        return view.status === 'failed_to_create' && view.completed_at ? view : undefined;
      },
      { timeoutMs: 30_000, describe: () => 'batch failed_to_create' },
    );
    const { total, canceled, queued, processing, succeeded, failed: failedCount } = failed.counts;
    expect(total).toBeGreaterThanOrEqual(5_000);
    expect(total).toBeLessThan(ROWS);
    expect({ canceled, queued, processing, succeeded, failed: failedCount }).toEqual({
      canceled: total,
      queued: 0,
      processing: 0,
      succeeded: 0,
      failed: 0,
    });
    expect(await stack.queueCounts('remove-bg')).toMatchObject({ waiting: 0, active: 0, prioritized: 0 });
    expect((await stack.emulatorStats()).total).toBe(0);
    expect(
      worker.logs().some((entry) => entry.msg === 'batch creations that stopped half-way marked failed_to_create'),
    ).toBe(true);
  }, 120_000);

  it('lets a retry with the same Idempotency-Key wait while the lease runs, then replace the batch with a complete one', async () => {
    const key = 'catalog-2026-12-01';
    // The API that takes the retry is up before the first one dies, so the retry comes at once.
    const api = await startApiProcess(env('8s'));
    const first = await killMidCreation(key, '8s');
    const early = await postManifest(api.url, stack.apiKey, { key });
    expect([early.status, early.body.error?.code, early.headers['retry-after']]).toEqual([
      409,
      'idempotency_request_in_progress',
      '1',
    ]);

    // Retried as a client would on 409, until the dead request's lease has lapsed.
    const retry = await waitUntil(
      async () => {
        const answer = await postManifest(api.url, stack.apiKey, { key });
        if (answer.status === 409) await sleep(500);
        return answer.status === 409 ? undefined : answer;
      },
      { timeoutMs: 60_000, describe: () => 'the retry accepted' },
    );
    expect(retry.status).toBe(202);
    expect(retry.body.id).not.toBe(first);
    expect(retry.body.counts).toMatchObject({ total: ROWS, queued: ROWS });
    expect(await getBatch(api.url, stack.apiKey, first)).toMatchObject({ status: 'failed_to_create' });

    const replay = await postManifest(api.url, stack.apiKey, { key });
    expect([replay.status, replay.body.id, replay.headers['idempotent-replayed']]).toEqual([
      202,
      retry.body.id,
      'true',
    ]);
  }, 120_000);
});
