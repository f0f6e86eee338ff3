import { Pool } from 'undici';
import { percentile } from './stats.ts';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * A closed-loop load generator (what autocannon does): `concurrency` loops, each sending
 * a GET as soon as its previous answer arrived, for `durationMs`. Bounded in time and count.
 */
export async function runLoad({
  origin,
  path,
  headers = {},
  concurrency,
  durationMs,
  maxRequests = 5_000_000,
}: {
  origin: string;
  path: string;
  headers?: Record<string, string>;
  concurrency: number;
  durationMs: number;
  maxRequests?: number;
}): Promise<LoadResult> {
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  // Warm the connections so connect time is not counted.
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const response = await pool.request({ method: 'GET', path, headers });
      await response.body.dump();
    }),
  );
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline && sent < maxRequests) {
        sent += 1;
        const begin = performance.now();
        try {
          const response = await pool.request({ method: 'GET', path, headers });
          await response.body.dump();
          if (response.statusCode !== 200) errors += 1;
        } catch {
          errors += 1;
        }
        latencies.push(performance.now() - begin);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return {
    requests: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/** Runs `task` for each index with at most `parallel` in flight; returns results in order. */
export async function mapLimit<T>(count: number, parallel: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, count) }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await task(index);
      }
    }),
  );
  return results;
}
