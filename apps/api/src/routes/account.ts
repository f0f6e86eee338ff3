import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import type { BudgetPeriod } from '@cutout/shared';
import type { AppDeps } from '../app.ts';
import { tenantOf } from '../auth.ts';

interface Guards { canRead: onRequestAsyncHookHandler; canWrite: onRequestAsyncHookHandler }

/** A budget period as clients see it; null when the period has no limit. */
export const budgetPeriodView = (period: BudgetPeriod | null) => (period ? { limit: period.limit, used: period.used, resets_at: period.resetsAt } : null);

export function accountRoutes(app: FastifyInstance, { config, tenants, usage, budgets }: AppDeps, { canRead, canWrite }: Guards): void {
  app.get('/v1/account', { onRequest: canRead }, async (request) => {
    const tenantId = tenantOf(request);
    const scopes = request.auth?.scopes ?? [];
    const [secrets, today, budget] = await Promise.all([tenants.webhookSecretState(tenantId), usage.day(tenantId), budgets.state(tenantId)]);
    return {
      tenant_id: tenantId,
      scopes,
      limits: { requests_per_minute: config.api.rateLimitPerMinute, max_upload_bytes: config.api.maxUploadBytes, max_image_pixels: config.api.maxImagePixels },
      usage_today: today,
      // Set by the operator (`npm run keys -- budget`); a job over it waits with waiting_reason budget_exhausted.
      budget: { daily: budgetPeriodView(budget.daily), monthly: budgetPeriodView(budget.monthly) },
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
