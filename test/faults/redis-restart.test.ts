import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { startApiProcess, startRedisServer, startWorkerProcess } from '../helpers/processes.ts';
import {
  countBy,
  distinctPhotos,
  printSummary,
  startFaultStack,
  waitForJobsToEnd,
  waitUntil,
  type FaultStack,
  type Json,
} from './stack.ts';

/**
 * Redis is where an accepted job lives. Run as production should (AOF, `appendfsync
 * everysec`), a Redis killed with SIGKILL and started again loses at most the last second of
 * writes: every job acknowledged with `202` more than a second before the kill must still
 * end `succeeded`. While Redis is away the API answers `503` at once (never a 500, never a
 * hang), and the workers reconnect by themselves.
 */

const SUBMITTERS = 4;
/** Jobs accepted 1.5 s or more before the kill: the run is well under way by then. */
const KILL_AFTER_ACCEPTED = 30;
/** How long Redis stays down. */
const DOWN_MS = 3_000;
/** Far above any answer the API should give while Redis is down: hitting it means a hang. */
const ANSWER_WITHIN_MS = 10_000;

interface Attempt {
  status: number | 'error';
  code?: string;
  id?: string;
  answeredAt: number;
  ms: number;
}

describe('Redis killed with SIGKILL and restarted (AOF, appendfsync everysec)', () => {
  let stack: FaultStack;
  let dataDirectory: string;
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  const redisArgs = () => [
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--dir',
    dataDirectory,
    '--maxmemory-policy',
    'noeviction',
  ];

  beforeAll(async () => {
    dataDirectory = mkdtempSync(join(tmpdir(), 'cutout-redis-aof-'));
    redis = await startRedisServer(redisArgs(), 'redis-aof');
    // Slow enough calls that jobs are queued and in flight when Redis dies.
    stack = await startFaultStack({ latencyMs: 150, fixedResult: true }, { redisUrl: redis.url });
  }, 60_000);
  afterAll(async () => {
    try {
      await stack?.close();
    } finally {
      rmSync(dataDirectory, { recursive: true, force: true });
    }
  }, 60_000);

  it('keeps every job acknowledged before the last second, answers 503 while down, and recovers by itself', async () => {
    const env = stack.env({
      WORKER_CONCURRENCY: '4',
      WORKER_LOCK_DURATION: '2s',
      WORKER_STALLED_INTERVAL: '1s',
      BYBYBG_MAX_ATTEMPTS: '10',
      BYBYBG_RETRY_DELAY: '100ms',
    });
    const [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
    const photos = await distinctPhotos(300);

    // Submitters keep posting, through the outage and after it, until told to stop; a refused
    // photo goes back in line, as a client would retry it.
    const attempts: Attempt[] = [];
    const pending = photos.map((_, index) => index);
    let stop = false;
    const submitters = Array.from({ length: SUBMITTERS }, async () => {
      while (!stop && pending.length > 0) {
        const index = pending.shift()!;
        const attempt = await post(api.url, stack.apiKey, photos[index]!);
        attempts.push(attempt);
        if (attempt.status !== 202) pending.push(index);
        // A steady trickle, so the run spans the kill, the outage and the recovery.
        await sleep(100);
      }
    });

    const accepted = () => attempts.filter((attempt) => attempt.status === 202);
    // Enough jobs acknowledged long enough ago (past the fsync second) that none may be lost.
    const settledBefore = (ms: number) => accepted().filter((attempt) => attempt.answeredAt < Date.now() - ms).length;
    await waitUntil(async () => (settledBefore(1_500) >= KILL_AFTER_ACCEPTED ? true : undefined), {
      timeoutMs: 60_000,
      describe: () => `${accepted().length} accepted`,
    });
    const linked = await request(`${api.url}/v1/jobs/${accepted()[0]!.id}/review-link`, {
      method: 'POST',
      headers: { 'x-api-key': stack.apiKey },
    });
    const reviewPath = new URL(((await linked.body.json()) as { url: string }).url).pathname;
    redis.process.killGroup('SIGKILL');
    await redis.process.exited;
    const killedAt = Date.now();

    // While Redis is down: reads and writes answer 503, in time.
    await sleep(500);
    const someId = accepted()[0]!.id!;
    const downRead = await timed(() =>
      request(`${api.url}/v1/jobs/${someId}`, {
        headers: { 'x-api-key': stack.apiKey },
        headersTimeout: ANSWER_WITHIN_MS,
      }),
    );
    const downWrite = await post(api.url, stack.apiKey, photos[photos.length - 1]!);
    expect(downRead.status).toBe(503);
    expect(downWrite.status).toBe(503);
    expect(downWrite.code).toBe('service_unavailable');
    // The review page says so in a page, not a JSON body or a 500.
    const downPage = await request(`${api.url}${reviewPath}`, { headersTimeout: ANSWER_WITHIN_MS });
    expect([downPage.statusCode, String(downPage.headers['content-type'])]).toEqual([503, 'text/html; charset=utf-8']);
    expect(await downPage.body.text()).toContain('Try again in a minute');

    await sleep(Math.max(0, DOWN_MS - (Date.now() - killedAt)));
    redis = await startRedisServer(redisArgs(), 'redis-aof-again', redis.port);
    const restartedAt = Date.now();

    // Let the submitters see Redis back, then stop them.
    const acceptedBeforeBack = accepted().length;
    await waitUntil(async () => (accepted().length >= acceptedBeforeBack + 10 ? true : undefined), {
      timeoutMs: 60_000,
      describe: () =>
        `${accepted().length - acceptedBeforeBack} accepted since the restart; answers: ${JSON.stringify(countBy(attempts.slice(-20).map((attempt) => attempt.status)))}`,
    });
    const firstAcceptedAfter = attempts.find((attempt) => attempt.status === 202 && attempt.answeredAt > restartedAt);
    stop = true;
    await Promise.all(submitters);

    // Every answer was a 202 or a 503: no 500, no hang, no dropped connection.
    const unexpected = attempts.filter(
      (attempt) => attempt.status !== 202 && !(attempt.status === 503 && attempt.code === 'service_unavailable'),
    );
    expect(countBy(unexpected.map((attempt) => `${attempt.status} ${attempt.code}`))).toEqual({});
    expect(Math.max(...attempts.map((attempt) => attempt.ms))).toBeLessThan(ANSWER_WITHIN_MS);

    // Jobs acknowledged more than 1 s before the kill: every one ends succeeded.
    const durable = accepted()
      .filter((attempt) => attempt.answeredAt < killedAt - 1_000)
      .map((attempt) => attempt.id!);
    const durableViews = await waitForJobsToEnd(api.url, stack.apiKey, durable, 120_000);
    const recoveredAt = Date.now();
    expect(countBy(durableViews.map((view) => view.status))).toEqual({ succeeded: durable.length });
    // The worker was never restarted: it reconnected by itself.
    expect(worker.done).toBe(false);

    // Jobs acknowledged after the restart are processed too.
    const afterIds = accepted()
      .filter((attempt) => attempt.answeredAt > restartedAt)
      .map((attempt) => attempt.id!);
    const afterViews = await waitForJobsToEnd(api.url, stack.apiKey, afterIds, 60_000);
    expect(countBy(afterViews.map((view) => view.status))).toEqual({ succeeded: afterIds.length });

    // The last second before the kill may be lost (appendfsync everysec): count, do not assert.
    const window = accepted().filter(
      (attempt) => attempt.answeredAt >= killedAt - 1_000 && attempt.answeredAt <= restartedAt,
    );
    const windowAnswers = await Promise.all(
      window.map(async (attempt) => {
        const response = await request(`${api.url}/v1/jobs/${attempt.id}`, { headers: { 'x-api-key': stack.apiKey } });
        const body = (await response.body.json()) as Json;
        return response.statusCode === 200 ? String(body.status) : String(response.statusCode);
      }),
    );

    printSummary('redis-restart', {
      accepted: accepted().length,
      durable: durable.length,
      durable_succeeded: durableViews.length,
      durable_lost: 0,
      last_second: window.length,
      last_second_outcomes: JSON.stringify(countBy(windowAnswers)).replaceAll(' ', ''),
      answered_503: attempts.filter((attempt) => attempt.status === 503).length,
      answered_5xx_other: 0,
      down_ms: restartedAt - killedAt,
      first_202_after_restart_ms: firstAcceptedAfter ? firstAcceptedAfter.answeredAt - restartedAt : -1,
      all_durable_done_after_restart_ms: recoveredAt - restartedAt,
    });
  }, 300_000);
});

async function timed(send: () => Promise<{ statusCode: number; body: { text(): Promise<string> } }>): Promise<Attempt> {
  const started = Date.now();
  try {
    const response = await send();
    const text = await response.body.text();
    let body: Json = {};
    try {
      body = JSON.parse(text) as Json;
    } catch {
      // Not JSON: the status tells.
    }
    return {
      status: response.statusCode,
      code: body.error?.code,
      id: body.id,
      answeredAt: Date.now(),
      ms: Date.now() - started,
    };
  } catch {
    return { status: 'error', answeredAt: Date.now(), ms: Date.now() - started };
  }
}

function post(apiUrl: string, apiKey: string, photo: Buffer): Promise<Attempt> {
  const form = new FormData();
  form.append('file', new Blob([photo], { type: 'image/png' }), 'item.png');
  return timed(() =>
    request(`${apiUrl}/v1/jobs`, {
      method: 'POST',
      body: form,
      headers: { 'x-api-key': apiKey },
      headersTimeout: ANSWER_WITHIN_MS,
      bodyTimeout: ANSWER_WITHIN_MS,
    }),
  );
}
