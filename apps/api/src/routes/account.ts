import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';

interface Guards { canRead: onRequestAsyncHookHandler; canWrite: onRequestAsyncHookHandler }

export function accountRoutes(app: FastifyInstance, { config, tenants, usage }: AppDeps, { canRead, canWrite }: Guards): void {
  app.get('/v1/account', { onRequest: canRead }, async (request) => {
    const tenantId = tenantOf(request);
    const scopes = request.auth?.scopes ?? [];
    const [secrets, today] = await Promise.all([tenants.webhookSecretState(tenantId), usage.day(tenantId)]);
    return {
      tenant_id: tenantId,
      scopes,
      limits: { requests_per_minute: config.api.rateLimitPerMinute, max_upload_bytes: config.api.maxUploadBytes, max_image_pixels: config.api.maxImagePixels },
      usage_today: today,
      // The signing secret lets its holder forge deliveries to the tenant's receivers: write keys only.
      ...(scopes.includes('jobs:write') ? { webhook_secret: secrets.current } : {}),
      previous_webhook_secret_expires_at: secrets.previousExpiresAt,
    };
  });

  // The new secret signs at once; the old one keeps signing beside it for WEBHOOK_SECRET_GRACE,
  // so receivers can switch to the new one without rejecting a single delivery.
  app.post('/v1/account/webhook-secret/rotate', { onRequest: canWrite }, async (request) => {
    const rotated = await tenants.rotateWebhookSecret(tenantOf(request), config.webhooks.secretGraceMs);
    request.log.info({ previousExpiresAt: rotated.previousExpiresAt }, 'webhook secret rotated');
    return { webhook_secret: rotated.current, previous_secret_expires_at: rotated.previousExpiresAt };
  });
}
