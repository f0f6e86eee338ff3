import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { whenReady } from '../../test/helpers/webhook-receiver.ts';

export interface BenchReceiver {
  url: string;
  /** When each job's first webhook arrived (performance.now() ms), by job id. */
  arrivals: Map<string, number>;
  /** The `data` of each job's first event (the job view), by job id. */
  events: Map<string, Record<string, unknown>>;
  /** Deliveries received, duplicates included. */
  count(): number;
  /** Resolves once `jobs` distinct jobs have had a webhook; rejects after `timeoutMs`. */
  waitForJobs(jobs: number, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** A loopback webhook receiver that answers 204 and notes when each job's event arrived. */
export async function startBenchReceiver(): Promise<BenchReceiver> {
  const arrivals = new Map<string, number>();
  const events = new Map<string, Record<string, unknown>>();
  let deliveries = 0;
  const waiters = new Set<() => void>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const now = performance.now();
      deliveries += 1;
      response.writeHead(204).end();
      const event = parse(Buffer.concat(chunks).toString('utf8'));
      const id = event?.data?.id ?? event?.job;
      if (typeof id === 'string' && !arrivals.has(id)) {
        arrivals.set(id, now);
        if (event?.data) events.set(id, event.data);
      }
      for (const wake of waiters) wake();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    arrivals,
    events,
    count: () => deliveries,
    waitForJobs(jobs, timeoutMs) {
      return whenReady(
        waiters,
        () => (arrivals.size >= jobs ? true : undefined),
        timeoutMs,
        () => `only ${arrivals.size} of ${jobs} webhooks within ${timeoutMs} ms`,
      ).then(() => undefined);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A Cutout event (`data` is the job) or a baseline's (`job` is its id). */
function parse(body: string): { data?: Record<string, unknown> & { id?: unknown }; job?: unknown } | undefined {
  try {
    return JSON.parse(body) as { data?: Record<string, unknown>; job?: unknown };
  } catch {
    return undefined;
  }
}
