import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { tenantOf } from '../auth.ts';
import { accountOperations } from '../contract/account.ts';
import { routeOf } from '../contract/register.ts';
import type { RouteOptions } from '../deps.ts';

/** The tenant's account, and the rotation of its webhook signing secret. */
export const accountRoutes: FastifyPluginAsync<RouteOptions> = async (plugin, { deps, guards }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  const ops = accountOperations();
  const { config, tenants, usage } = deps;

  app.route({
    ...routeOf(ops.getAccount, guards),
    handler: async (request) => {
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
    },
  });

  // The new secret signs at once; the old one keeps signing beside it for WEBHOOK_SECRET_GRACE,
  // so receivers can switch to the new one without rejecting a single delivery.
  app.route({
    ...routeOf(ops.rotateWebhookSecret, guards),
    handler: async (request) => {
      const rotated = await tenants.rotateWebhookSecret(tenantOf(request), config.webhooks.secretGraceMs);
      request.log.info({ previousExpiresAt: rotated.previousExpiresAt }, 'webhook secret rotated');
      return { webhook_secret: rotated.current, previous_secret_expires_at: rotated.previousExpiresAt };
    },
  });
};
