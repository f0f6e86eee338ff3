import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';
import { enableEndpoint, endpointPage, type EndpointDeps } from '../webhook-endpoint-views.ts';
import type { Guards } from './jobs.ts';

/** The URLs the tenant's webhooks go to, their state (disabled by a 410, failing, enabled), and enabling one again. */
export function webhookEndpointRoutes(app: FastifyInstance, deps: AppDeps, { canRead, canWrite }: Guards): void {
  const endpoints: EndpointDeps = { deliveries: deps.webhookDeliveries, goneEndpoints: deps.goneEndpoints, gate: deps.webhookGate, outbox: deps.webhookOutbox };

  app.get<{ Querystring: { limit?: string; cursor?: string } }>('/v1/webhook-endpoints', { onRequest: canRead }, async (request) =>
    endpointPage(endpoints, tenantOf(request), request.query));

  app.post('/v1/webhook-endpoints/enable', { onRequest: canWrite }, async (request) => {
    const view = await enableEndpoint(endpoints, tenantOf(request), request.body, { allowPrivate: deps.config.webhooks.allowPrivate });
    request.log.info({ state: view.state }, 'webhook endpoint enabled');
    return view;
  });
}
