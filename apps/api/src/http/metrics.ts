import type { FastifyInstance } from 'fastify';
import type { Metrics } from '@cutout/shared/infra';

/** Requests that match no route share one label, so a scanner's URLs cannot add series. */
const UNMATCHED_ROUTE = 'unmatched';

/**
 * Counts and times every answered request by route pattern (`/v1/jobs/:id`), never the
 * raw URL, and counts accepted jobs. An idempotent replay accepted nothing new.
 */
export function registerHttpMetrics(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const { method } = request;
    metrics.httpRequests.inc({ method, route, status: String(reply.statusCode) });
    metrics.httpRequestDurationSeconds.observe({ method, route }, reply.elapsedTime / 1000);
    const accepted = reply.statusCode === 202 || reply.statusCode === 200;
    if (method === 'POST' && route === '/v1/jobs' && accepted && !reply.hasHeader('idempotent-replayed'))
      metrics.jobsAccepted.inc();
    done();
  });
}
