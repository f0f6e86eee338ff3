import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from '@cutout/shared/infra';

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * A worker's own `/metrics` (Prometheus scrapes every worker process) and `/healthz`
 * (the process is alive). Plain node:http: a worker needs no web framework for two paths.
 */
export async function startMetricsServer({
  metrics,
  port,
  host,
}: {
  metrics: Metrics;
  port: number;
  host: string;
}): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD')
      return send(response, 405, 'text/plain', 'method not allowed\n');
    if (path === '/healthz') return send(response, 200, 'application/json', '{"status":"ok"}');
    if (path !== '/metrics') return send(response, 404, 'text/plain', 'not found\n');
    metrics.registry.metrics().then(
      (body) => send(response, 200, metrics.registry.contentType, body),
      () => send(response, 500, 'text/plain', 'metrics could not be collected\n'),
    );
  });
  // A scrape must never keep a stopping worker alive.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
