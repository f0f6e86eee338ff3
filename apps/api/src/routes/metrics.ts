import type { FastifyInstance } from 'fastify';
import type { Logger, Metrics, Queues } from '@cutout/shared';

/**
 * `GET /metrics` in Prometheus' text format. Queue depths are read from Redis at scrape
 * time; while Redis is down they are left out and the rest still answers.
 */
export function metricsRoutes(app: FastifyInstance, { metrics, queues, log }: { metrics: Metrics; queues: Queues; log: Logger }): void {
  const untrack = metrics.trackQueues([queues.removeBg, queues.webhooks], (error) => log.debug({ err: error }, 'queue depth not collected'));
  app.addHook('onClose', async () => untrack());

  app.get('/metrics', async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}
