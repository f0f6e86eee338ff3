import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';

export function accountRoutes(app: FastifyInstance, { tenants }: AppDeps, canRead: preHandlerAsyncHookHandler): void {
  app.get('/v1/account', { preHandler: canRead }, async (request) => {
    const tenantId = tenantOf(request);
    const secrets = await tenants.webhookSecrets(tenantId);
    return { tenant_id: tenantId, webhook_secret: secrets[0], scopes: request.auth?.scopes ?? [] };
  });
}
