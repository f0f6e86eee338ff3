import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { resultKey } from '@cutout/shared/infra';
import { startApiProcess, startWorkerProcess } from '../helpers/processes.ts';
import {
  countBy,
  distinctPhotos,
  printSummary,
  startFaultStack,
  submitAll,
  waitForJobsToEnd,
  type FaultStack,
  type Json,
} from './stack.ts';

/**
 * S3 holds every original and result. When it goes away for a while, the API must refuse new
 * uploads with `503` (and queue nothing it could not store), and the jobs already queued must
 * wait it out — retried, not failed — and succeed once it is back.
 */

const QUEUED_JOBS = 12;
const REFUSED_UPLOADS = 5;
/** How long S3 stays down: longer than a few retries of the queued jobs. */
const DOWN_MS = 3_000;

describe('the S3 server stopped for a while and started again', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    // Slow calls keep jobs queued and in flight when S3 goes away.
    stack = await startFaultStack({ latencyMs: 300, fixedResult: true }, { restartableS3: true });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  }, 60_000);

  it('answers uploads 503 with nothing queued, then finishes every queued job once S3 is back', async () => {
    const env = stack.env({ WORKER_CONCURRENCY: '2', BYBYBG_MAX_ATTEMPTS: '50', BYBYBG_RETRY_DELAY: '100ms' });
    const [api] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
    const photos = await distinctPhotos(QUEUED_JOBS + REFUSED_UPLOADS);
    const ids = await submitAll(api.url, stack.apiKey, photos.slice(0, QUEUED_JOBS));

    await stack.stopS3();
    const stoppedAt = Date.now();
    const countsBefore = await stack.queueCounts('remove-bg');
    const queuedBefore = total(countsBefore);

    const refused: { status: number; code: string }[] = [];
    for (const photo of photos.slice(QUEUED_JOBS)) {
      const form = new FormData();
      form.append('file', new Blob([photo], { type: 'image/png' }), 'item.png');
      const response = await request(`${api.url}/v1/jobs`, {
        method: 'POST',
        body: form,
        headers: { 'x-api-key': stack.apiKey },
        headersTimeout: 20_000,
      });
      const body = (await response.body.json()) as Json;
      refused.push({ status: response.statusCode, code: String(body.error?.code) });
    }
    expect(refused).toEqual(Array(REFUSED_UPLOADS).fill({ status: 503, code: 'service_unavailable' }));
    // Nothing was queued for the refused uploads, and the tenant's list holds only the accepted jobs.
    expect(total(await stack.queueCounts('remove-bg'))).toBe(queuedBefore);
    const listed = await request(`${api.url}/v1/jobs?limit=100`, { headers: { 'x-api-key': stack.apiKey } });
    const list = (await listed.body.json()) as Json;
    expect(listed.statusCode).toBe(200);
    expect((list.data as Json[]).map((job) => job.id).sort()).toEqual([...ids].sort());

    await sleep(Math.max(0, DOWN_MS - (Date.now() - stoppedAt)));
    // Mid-outage, no queued job has been given up on.
    const during = await currentViews(api.url, stack.apiKey, ids);
    expect(during.filter((view) => view.status === 'failed')).toEqual([]);

    await stack.startS3();
    const restartedAt = Date.now();
    const views = await waitForJobsToEnd(api.url, stack.apiKey, ids, 120_000);
    const recoveryMs = Date.now() - restartedAt;
    expect(countBy(views.map((view) => view.status))).toEqual({ succeeded: QUEUED_JOBS });
    for (const view of views)
      expect(await stack.storage.head(resultKey(stack.tenantId, view.id)), view.id).toMatchObject({
        bytes: view.result.bytes,
      });

    printSummary('s3-restart', {
      accepted: QUEUED_JOBS,
      succeeded: views.length,
      lost: 0,
      refused_503: refused.length,
      queued_while_down: 0,
      retried_jobs: views.filter((view) => view.attempts > 1).length,
      down_ms: restartedAt - stoppedAt,
      all_done_after_restart_ms: recoveryMs,
    });
  }, 240_000);
});

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

async function currentViews(apiUrl: string, apiKey: string, ids: string[]): Promise<Json[]> {
  return Promise.all(
    ids.map(async (id) => {
      const response = await request(`${apiUrl}/v1/jobs/${id}`, { headers: { 'x-api-key': apiKey } });
      return (await response.body.json()) as Json;
    }),
  );
}
