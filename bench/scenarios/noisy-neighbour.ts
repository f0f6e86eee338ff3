import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { randomBase62 } from '@cutout/shared/infra';
import { distinctPhotos } from '../lib/images.ts';
import { jobStatuses, startBenchStack, submitJob, type BenchStack, type Json } from '../lib/stack.ts';
import { percentile, round } from '../lib/stats.ts';
import type { Scenario } from '../lib/types.ts';

const TRIES = 20;
/** How long one try waits for its webhook before it counts as this long (and the rest are skipped). */
const GIVE_UP_MS = 60_000;
/** The noisy tenant's receiver answers after this long: past WEBHOOK_TIMEOUT (15 s), so every attempt times out. */
const HANG_MS = 20_000;
/**
 * Tries under noise start this far apart, so the 20 span the first timeouts of the noisy
 * tenant's deliveries (15 s), their retries and the opening of its endpoint's circuit.
 */
const PACE_MS = 2_000;

/**
 * Scenario 9: one tenant's receiver hangs while hundreds of its deliveries are queued; how
 * soon does another tenant's webhook arrive after its job ends? Two workers with the
 * default WEBHOOK_CONCURRENCY (16) and WEBHOOK_TIMEOUT (15 s), ByByBG instant. The quiet
 * tenant submits one job at a time, 20 times, and the time from the job's `finished_at` to
 * its `job.succeeded` reaching a healthy receiver is measured: first with the system
 * otherwise idle (the baseline, same run), then with the noisy tenant's deliveries queued,
 * one try every 2 s so they cover its first timeouts, retries and circuit opening.
 */
export function noisyNeighbourScenario(noisyDeliveries: number): Scenario {
  return {
    name: 'noisy-neighbour',
    async run(context) {
      const photos = await distinctPhotos(noisyDeliveries + 2 * TRIES);
      const stack = await startBenchStack({ fixedResult: true });
      const hanging = await startHangingReceiver();
      try {
        const noisyKey = `ck_bench_${randomBase62(32)}`;
        const api = await stack.startApi({ API_KEYS: `bench:${stack.apiKey},noisy:${noisyKey}` });
        await stack.startWorkers(2, { BYBYBG_RATE_LIMIT: '5000' });

        const baseline = await quietTries(stack, api.url, photos.slice(noisyDeliveries, noisyDeliveries + TRIES));
        context.log(
          `  quiet: job end → webhook p50 ${round(percentile(baseline, 50))} ms, p99 ${round(percentile(baseline, 99))} ms`,
        );

        // The noisy tenant's jobs end and each queues a delivery to the hanging receiver.
        const noisy = photos.slice(0, noisyDeliveries);
        const noisyIds: string[] = [];
        for (let i = 0; i < noisy.length; i += 20) {
          noisyIds.push(
            ...(await Promise.all(
              noisy.slice(i, i + 20).map((photo) => submitJob(api.url, noisyKey, photo, { webhook_url: hanging.url })),
            )),
          );
        }
        await waitUntilEnded(api.url, noisyKey, noisyIds);
        const hungBefore = hanging.requests();
        context.log(
          `  noisy tenant: ${noisyDeliveries} deliveries queued to a receiver that answers after ${HANG_MS / 1000} s; ${hungBefore} sent to it so far`,
        );

        const loaded = await quietTries(stack, api.url, photos.slice(noisyDeliveries + TRIES), {
          alreadyArrived: stack.receiver.arrivals.size,
          paceMs: PACE_MS,
        });
        const pendingAfter = await pendingDeliveries(api.url, noisyKey);
        context.log(
          `  with the noisy tenant: job end → webhook p50 ${round(percentile(loaded, 50))} ms, p99 ${round(percentile(loaded, 99))} ms; ` +
            `its receiver got ${hanging.requests()} requests in all, ${pendingAfter} of its deliveries still pending`,
        );
        return [
          {
            name: '9 noisy neighbour: job end → webhook of another tenant, p99 of 20',
            value: round(percentile(loaded, 99)),
            unit: 'ms',
            baseline: round(percentile(baseline, 99)),
            target: '≤ 5000',
            meets: (value) => value <= 5_000,
          },
          {
            name: '9 noisy neighbour: job end → webhook of another tenant, p50 of 20',
            value: round(percentile(loaded, 50)),
            unit: 'ms',
            baseline: round(percentile(baseline, 50)),
          },
          {
            name: '9 noisy neighbour: requests the hanging receiver got while queued (context)',
            value: hanging.requests(),
            unit: 'requests',
          },
        ];
      } finally {
        await hanging.close();
        await stack.close();
      }
    },
  };
}

/** One job at a time, each `paceMs` after the previous one started; the time from each job's end to its webhook's arrival, in ms. */
async function quietTries(
  stack: BenchStack,
  apiUrl: string,
  photos: Buffer[],
  { alreadyArrived = 0, paceMs = 0 } = {},
): Promise<number[]> {
  const latencies: number[] = [];
  const start = performance.now();
  for (const [index, photo] of photos.entries()) {
    const wait = start + index * paceMs - performance.now();
    if (wait > 0) await sleep(wait);
    const id = await submitJob(apiUrl, stack.apiKey, photo, { webhook_url: stack.receiver.url });
    const arrived = await stack.receiver.waitForJobs(alreadyArrived + index + 1, GIVE_UP_MS).then(
      () => true,
      () => false,
    );
    if (!arrived) {
      // The rest would wait as long: report this one as the wait and stop.
      latencies.push(GIVE_UP_MS);
      break;
    }
    const finishedMs = Date.parse(String((stack.receiver.events.get(id) as Json | undefined)?.finished_at));
    latencies.push(performance.timeOrigin + stack.receiver.arrivals.get(id)! - finishedMs);
  }
  return latencies;
}

/** Until the noisy tenant's jobs have all succeeded: each has queued its delivery by then. */
async function waitUntilEnded(apiUrl: string, apiKey: string, ids: string[]): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (((await jobStatuses(apiUrl, apiKey, ids)).succeeded ?? 0) < ids.length) {
    if (Date.now() > deadline)
      throw new Error(`the noisy tenant's ${ids.length} jobs did not all succeed within 120 s`);
    await sleep(200);
  }
}

const pendingDeliveries = (apiUrl: string, apiKey: string): Promise<number> =>
  Promise.all(['pending', 'endpoint_failing'].map((status) => deliveryCount(apiUrl, apiKey, `status=${status}`))).then(
    ([a, b]) => a! + b!,
  );

/** Entries of the tenant's delivery log matching `query`, counted page by page. */
async function deliveryCount(apiUrl: string, apiKey: string, query: string): Promise<number> {
  let count = 0;
  let cursor: string | null = null;
  do {
    const response = await request(
      `${apiUrl}/v1/webhook-deliveries?limit=100&${query}${cursor ? `&cursor=${cursor}` : ''}`,
      { headers: { 'x-api-key': apiKey } },
    );
    const body = (await response.body.json()) as Json;
    // Older code without the delivery log: unknown (NaN), the tries still measure.
    if (response.statusCode !== 200) return Number.NaN;
    count += (body.data as unknown[]).length;
    cursor = body.next_cursor as string | null;
  } while (cursor);
  return count;
}

/** A receiver that takes every request and answers it only after HANG_MS. */
async function startHangingReceiver(): Promise<{ url: string; requests(): number; close(): Promise<void> }> {
  let requests = 0;
  const server: Server = createServer((incoming, response) => {
    requests += 1;
    incoming.resume();
    const timer = setTimeout(() => response.writeHead(204).end(), HANG_MS);
    response.on('close', () => clearTimeout(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests: () => requests,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
