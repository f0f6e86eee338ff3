import type { FastifyInstance, preHandlerAsyncHookHandler } from 'fastify';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';

interface Guards { canRead: preHandlerAsyncHookHandler; canWrite: preHandlerAsyncHookHandler }

export function accountRoutes(app: FastifyInstance, { config, tenants }: AppDeps, { canRead, canWrite }: Guards): void {
  app.get('/v1/account', { preHandler: canRead }, async (request) => {
    const tenantId = tenantOf(request);
    const secrets = await tenants.webhookSecretState(tenantId);
    return {
      tenant_id: tenantId,
      webhook_secret: secrets.current,
      previous_webhook_secret_expires_at: secrets.previousExpiresAt,
      scopes: request.auth?.scopes ?? [],
    };
  });

  // The new secret signs at once; the old one keeps signing beside it for WEBHOOK_SECRET_GRACE,
  // so receivers can switch to the new one without rejecting a single delivery.
  app.post('/v1/account/webhook-secret/rotate', { preHandler: canWrite }, async (request) => {
    const rotated = await tenants.rotateWebhookSecret(tenantOf(request), config.webhooks.secretGraceMs);
    request.log.info({ previousExpiresAt: rotated.previousExpiresAt }, 'webhook secret rotated');
    return { webhook_secret: rotated.current, previous_secret_expires_at: rotated.previousExpiresAt };
  });
}
