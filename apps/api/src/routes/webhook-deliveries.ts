import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { ownBatch } from '../owned.ts';
import { makeRedeliveryLimit } from '../redelivery-limit.ts';
import { deliveryPage, parseSince, toDeliveryView, type DeliveryListQuery } from '../webhook-delivery-views.ts';
import { recoverDeliveries } from '../webhook-recovery.ts';
import { redeliverBatchWebhook, type RedeliveryDeps } from '../webhook-redelivery.ts';
import type { Guards } from './jobs.ts';

/** The tenant's delivery log across jobs and batches, recovery after an outage, and a batch event's redelivery. */
export function webhookDeliveryRoutes(app: FastifyInstance, deps: AppDeps, { canRead, canWrite }: Guards): void {
  const redelivery: RedeliveryDeps = {
    jobs: deps.jobs, outbox: deps.webhookOutbox, deliveries: deps.webhookDeliveries, goneEndpoints: deps.goneEndpoints, gate: deps.webhookGate,
  };
  const limit = makeRedeliveryLimit({ redis: deps.redis, prefix: deps.config.redis.prefix, perMinute: deps.config.webhooks.redeliveriesPerMinute });

  app.get<{ Querystring: DeliveryListQuery }>('/v1/webhook-deliveries', { onRequest: canRead }, async (request) =>
    deliveryPage(deps.webhookDeliveries, tenantOf(request), request.query));

  app.post<{ Body: { since?: unknown } | undefined }>('/v1/webhook-deliveries/recover', { onRequest: canWrite }, async (request, reply) => {
    const tenantId = tenantOf(request);
    const sinceMs = parseSince(request.body?.since, { required: true })!;
    await limit.take(tenantId);
    const recovery = await recoverDeliveries(redelivery, tenantId, sinceMs);
    request.log.info({ sinceMs, ...recovery }, 'webhook deliveries recovered');
    return reply.status(202).send({
      object: 'webhook_recovery', since: new Date(sinceMs).toISOString(),
      queued: recovery.queued, endpoint_disabled: recovery.endpointDisabled, has_more: recovery.hasMore,
    });
  });

  app.post<{ Params: { id: string } }>('/v1/batches/:id/webhook/redeliver', { onRequest: canWrite }, async (request, reply) => {
    const batch = await ownBatch(deps.batches, request);
    await limit.take(batch.tenantId);
    const entry = await redeliverBatchWebhook(redelivery, batch);
    request.log.info({ batchId: batch.id }, 'batch webhook redelivery queued');
    return reply.status(202).send(toDeliveryView(entry));
  });
}
