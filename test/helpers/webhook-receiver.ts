import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

/** How the receiver answers one request: a status, a status with headers, or never ('hang'). */
type Answer = number | { status: number; headers?: Record<string, string> } | 'hang';

export interface WebhookReceiver {
  url: string;
  port: number;
  received: ReceivedWebhook[];
  /** Answer with this (default 204) from now on; 'hang' never answers. */
  respondWith(answer: Answer): void;
  /** Answer the next requests with these, in order, then as `respondWith` says. */
  answerNext(...answers: Answer[]): void;
  /** TCP connections accepted so far. */
  connections(): number;
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
}

/** A loopback HTTP server that records every request it gets; `port` re-listens on a known port. */
export async function startWebhookReceiver({ port: wantedPort = 0 }: { port?: number } = {}): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const scripted: Answer[] = [];
  let status: Answer = 204;
  let connections = 0;
  const waiters = new Set<() => void>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now() });
      const answer = scripted.shift() ?? status;
      if (answer !== 'hang') {
        const { status: code, headers = {} } = typeof answer === 'number' ? { status: answer } : answer;
        response.writeHead(code, headers).end();
      }
      for (const wake of waiters) wake();
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(wantedPort, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    respondWith(next) {
      status = next;
    },
    answerNext(...answers) {
      scripted.push(...answers);
    },
    connections: () => connections,
    waitFor(count, timeoutMs = 20_000) {
      return whenReady(
        waiters,
        () => (received.length >= count ? received.slice(0, count) : undefined),
        timeoutMs,
        () => `expected ${count} webhooks, got ${received.length} within ${timeoutMs} ms`,
      );
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Resolves with `ready()`'s first defined value, checked now and each time the receiver
 * wakes its `waiters` (a request arrived); rejects with `failure()` after `timeoutMs`.
 */
export function whenReady<T>(
  waiters: Set<() => void>,
  ready: () => T | undefined,
  timeoutMs: number,
  failure: () => string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const value = ready();
      if (value === undefined) return;
      done();
      resolve(value);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(failure()));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      waiters.delete(check);
    };
    waiters.add(check);
    check();
  });
}
