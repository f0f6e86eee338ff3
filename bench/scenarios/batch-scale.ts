import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { redisBytesByGroup } from '../lib/redis-memory.ts';
import { MB, readMemory, sampleRss } from '../lib/proc.ts';
import { startBenchStack } from '../lib/stack.ts';
import { percentile, round } from '../lib/stats.ts';
import type { Sample, Scenario } from '../lib/types.ts';

const row = (index: number) =>
  `https://cdn.example.com/catalog/2026/spring/SKU-${String(index).padStart(7, '0')}-front.jpg,SKU-${index},red,XL\r\n`;

/** A CSV manifest of `rows` rows as a multipart body, made a slice at a time. */
async function* manifestBody(boundary: string, rows: number): AsyncGenerator<Buffer> {
  yield Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="manifest"; filename="catalog.csv"\r\nContent-Type: text/csv\r\n\r\nimage_url,client_ref,colour,size\r\n`,
  );
  for (let start = 0; start < rows; start += 2_000) {
    let text = '';
    for (let index = start; index < Math.min(start + 2_000, rows); index++) text += row(index);
    yield Buffer.from(text);
  }
  yield Buffer.from(`\r\n--${boundary}--\r\n`);
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

/**
 * Scenario 8 (scale): one `rows`-row CSV manifest (MAX_BATCH_ITEMS at its default, 100,000) to
 * an API process of its own, no worker running (every item stays queued, as in a backlog):
 * the answer time and the API's peak RSS above idle (VmRSS every 25 ms, and VmHWM); then, at
 * that size, `GET /v1/batches/:id` 50 times, the first page of `…/jobs?limit=100`, the
 * first 100 lines of the results manifest, and the Redis bytes the batch added per queued
 * item (`MEMORY USAGE` of every key of the run's prefix, after minus before); last the cancel.
 */
export function batchScaleScenario(rows: number): Scenario {
  return {
    name: 'batch-scale',
    async run(context) {
      const stack = await startBenchStack();
      try {
        const api = await stack.startApi({ MAX_BATCH_ITEMS: String(Math.max(rows, 100_000)) });
        const headers = { 'x-api-key': stack.apiKey };
        const post = async (count: number) => {
          const boundary = `----cutoutscale${Math.random().toString(16).slice(2)}`;
          const response = await request(`${api.url}/v1/batches`, {
            method: 'POST',
            body: Readable.from(manifestBody(boundary, count)),
            headersTimeout: 300_000,
            bodyTimeout: 300_000,
            headers: { ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` },
          });
          const body = (await response.body.json()) as { id: string; counts: { total: number } };
          if (response.statusCode !== 202)
            throw new Error(`manifest answered ${response.statusCode}: ${JSON.stringify(body).slice(0, 300)}`);
          return body;
        };
        await post(50);
        await sleep(1_000);
        const idle = readMemory(api.process.pid);
        const bytesBefore = Object.values(await redisBytesByGroup(stack.redis, stack.prefix)).reduce(
          (sum, bytes) => sum + bytes,
          0,
        );
        const sampler = sampleRss(api.process.pid);
        const created = await timed(() => post(rows));
        const peak = sampler.stop();
        // VmHWM counts only when it rose during the request (start-up may have set it higher than idle).
        const growth = (Math.max(peak.peakRss, peak.hwm > idle.hwm ? peak.hwm : 0) - idle.rss) / MB;
        const batchId = created.value.id;
        context.log(
          `  ${rows} rows: 202 in ${round(created.ms / 1000, 2)} s, total ${created.value.counts.total}, API idle ${round(idle.rss / MB)} MB, peak +${round(growth)} MB`,
        );

        const statusMs: number[] = [];
        for (let index = 0; index < 50; index++) {
          statusMs.push(
            (await timed(async () => (await request(`${api.url}/v1/batches/${batchId}`, { headers })).body.dump())).ms,
          );
        }
        const jobsPage = await timed(async () =>
          (await request(`${api.url}/v1/batches/${batchId}/jobs?limit=100`, { headers })).body.dump(),
        );
        const manifestPage = await timed(async () => {
          const response = await request(`${api.url}/v1/batches/${batchId}/results`, { headers });
          let lines = 0;
          for await (const chunk of response.body) {
            lines += chunk.toString().split('\n').length - 1;
            if (lines >= 100) break;
          }
          response.body.destroy();
        });
        const bytesAfter = Object.values(await redisBytesByGroup(stack.redis, stack.prefix)).reduce(
          (sum, bytes) => sum + bytes,
          0,
        );
        const perItem = (bytesAfter - bytesBefore) / created.value.counts.total;
        const cancel = await timed(async () =>
          (await request(`${api.url}/v1/batches/${batchId}`, { method: 'DELETE', headers })).body.dump(),
        );
        context.log(
          `  status GET p50 ${round(percentile(statusMs, 50), 2)} ms, jobs page ${round(jobsPage.ms)} ms, first 100 manifest lines ${round(manifestPage.ms)} ms, ${round(perItem)} Redis bytes per queued item, cancel ${round(cancel.ms / 1000, 2)} s`,
        );
        const label = `${rows.toLocaleString('en-US')}-row manifest`;
        return [
          {
            name: `8 batch scale: ${label} answered 202 in`,
            value: round(created.ms / 1000, 2),
            unit: 's',
            target: '≤ 15',
            meets: (value) => value <= 15,
          },
          {
            name: `8 batch scale: API peak RSS growth, ${label}`,
            value: round(growth, 1),
            unit: 'MB',
            target: '≤ 150',
            meets: (value) => value <= 150,
          },
          {
            name: `8 batch scale: GET /v1/batches/:id p50 at ${rows.toLocaleString('en-US')} items`,
            value: round(percentile(statusMs, 50), 2),
            unit: 'ms',
            target: '≤ 20',
            meets: (value) => value <= 20,
          },
          {
            name: `8 batch scale: first page of results (100 manifest lines) at ${rows.toLocaleString('en-US')} items`,
            value: round(manifestPage.ms, 1),
            unit: 'ms',
            target: '≤ 500',
            meets: (value) => value <= 500,
          },
          {
            name: `8 batch scale: first page of …/jobs?limit=100 at ${rows.toLocaleString('en-US')} items (context)`,
            value: round(jobsPage.ms, 1),
            unit: 'ms',
          },
          {
            name: '8 batch scale: Redis bytes per queued item',
            value: Math.round(perItem),
            unit: 'bytes',
            target: '≤ 1,024',
            meets: (value) => value <= 1024,
          },
          {
            name: `8 batch scale: cancel of ${rows.toLocaleString('en-US')} queued items (context)`,
            value: round(cancel.ms / 1000, 2),
            unit: 's',
          },
        ] satisfies Sample[];
      } finally {
        await stack.close();
      }
    },
  };
}
