import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { WebhookAttempt } from '@cutout/shared/stores';
import { toJobView } from '@cutout/shared/views';
import { tenantOf } from '../auth/authenticate.ts';
import { routeOf } from '../contract/register.ts';
import { webhookOperations } from '../contract/webhooks.ts';
import type { RouteOptions } from '../deps.ts';
import { ownBatch, ownJob } from '../http/owned.ts';
import { makeRedeliveryLimit } from '../webhooks/redelivery-limit.ts';
import { deliveryPage, toDeliveryView } from '../webhooks/delivery-views.ts';
import { enableEndpoint, endpointPage, type EndpointDeps } from '../webhooks/endpoint-views.ts';
import { recoverDeliveries } from '../webhooks/recovery.ts';
import { redeliverBatchWebhook, redeliverWebhook, type RedeliveryDeps } from '../webhooks/redelivery.ts';

const toAttemptView = (attempt: WebhookAttempt) => ({
  attempted_at: attempt.attemptedAt,
  event_type: attempt.eventType,
  webhook_id: attempt.webhookId,
  status_code: attempt.statusCode,
  duration_ms: attempt.durationMs,
  error: attempt.error,
});

/**
 * Webhook deliveries: a job's attempt log, redelivery of a job's or a batch's event (one
 * pending delivery per event at most), the tenant's delivery log and recovery after an
 * outage, and the endpoints' state.
 */
export const webhookRoutes: FastifyPluginAsync<RouteOptions> = async (plugin, { deps, guards, contract }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  const ops = webhookOperations(contract);
  const { config, jobs, batches, storage } = deps;
  const redelivery: RedeliveryDeps = {
    jobs,
    outbox: deps.webhookOutbox,
    deliveries: deps.webhookDeliveries,
    goneEndpoints: deps.goneEndpoints,
    gate: deps.webhookGate,
  };
  const endpoints: EndpointDeps = {
    deliveries: deps.webhookDeliveries,
    goneEndpoints: deps.goneEndpoints,
    gate: deps.webhookGate,
    outbox: deps.webhookOutbox,
  };
  const limit = makeRedeliveryLimit({
    redis: deps.redis,
    prefix: config.redis.prefix,
    perMinute: config.webhooks.redeliveriesPerMinute,
  });

  app.route({
    ...routeOf(ops.listJobWebhookAttempts, guards),
    // At most the last 50 attempts are kept, so one page holds them all; `next_cursor` keeps the list shape.
    handler: async (request) => ({
      data: (await deps.webhookAttempts.list((await ownJob(jobs, request)).id)).map(toAttemptView),
      next_cursor: null,
    }),
  });

  app.route({
    ...routeOf(ops.redeliverJobWebhook, guards),
    handler: async (request, reply) => {
      const owned = await ownJob(jobs, request);
      await limit.take(owned.tenantId);
      const record = await redeliverWebhook(redelivery, owned);
      request.log.info({ jobId: record.id }, 'webhook redelivery queued');
      return reply.status(202).send(await toJobView(record, storage, config.api.resultUrlTtlMs));
    },
  });

  app.route({
    ...routeOf(ops.redeliverBatchWebhook, guards),
    handler: async (request, reply) => {
      const batch = await ownBatch(batches, request);
      await limit.take(batch.tenantId);
      const entry = await redeliverBatchWebhook(redelivery, batch);
      request.log.info({ batchId: batch.id }, 'batch webhook redelivery queued');
      return reply.status(202).send(toDeliveryView(entry));
    },
  });

  app.route({
    ...routeOf(ops.listWebhookDeliveries, guards),
    handler: async (request) => deliveryPage(deps.webhookDeliveries, tenantOf(request), request.query),
  });

  app.route({
    ...routeOf(ops.recoverWebhookDeliveries, guards),
    handler: async (request, reply) => {
      const tenantId = tenantOf(request);
      const sinceMs = request.body.since;
      await limit.take(tenantId);
      const recovery = await recoverDeliveries(redelivery, tenantId, sinceMs);
      request.log.info({ sinceMs, ...recovery }, 'webhook deliveries recovered');
      return reply.status(202).send({
        object: 'webhook_recovery',
        since: new Date(sinceMs).toISOString(),
        queued: recovery.queued,
        endpoint_disabled: recovery.endpointDisabled,
        has_more: recovery.hasMore,
      });
    },
  });

  app.route({
    ...routeOf(ops.listWebhookEndpoints, guards),
    handler: async (request) => endpointPage(endpoints, tenantOf(request), request.query),
  });

  app.route({
    ...routeOf(ops.enableWebhookEndpoint, guards),
    handler: async (request) => {
      const view = await enableEndpoint(endpoints, tenantOf(request), request.body.url);
      request.log.info({ state: view.state }, 'webhook endpoint enabled');
      return view;
    },
  });
};
