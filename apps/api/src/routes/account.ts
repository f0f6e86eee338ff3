import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { tenantOf } from '../auth/authenticate.ts';
import { accountOperations } from '../contract/account.ts';
import { routeOf } from '../contract/register.ts';
import type { RouteOptions } from '../deps.ts';
import { usageRange, usageTotals } from '../account/usage-range.ts';
import type { BudgetPeriod } from '@cutout/shared/stores';

/** A budget period as clients see it; null when the period has no limit. */
const budgetPeriodView = (period: BudgetPeriod | null) =>
  period ? { limit: period.limit, used: period.used, resets_at: period.resetsAt } : null;

/** The tenant's account, and the rotation of its webhook signing secret. */
export const accountRoutes: FastifyPluginAsync<RouteOptions> = async (plugin, { deps, guards }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  const ops = accountOperations();
  const { config, tenants, usage, budgets } = deps;

  app.route({
    ...routeOf(ops.getAccount, guards),
    handler: async (request) => {
      const tenantId = tenantOf(request);
      const scopes = request.auth?.scopes ?? [];
      const [secrets, today, budget] = await Promise.all([
        tenants.webhookSecretState(tenantId),
        usage.day(tenantId),
        budgets.state(tenantId),
      ]);
      return {
        tenant_id: tenantId,
        scopes,
        limits: {
          requests_per_minute: config.api.rateLimitPerMinute,
          max_upload_bytes: config.api.maxUploadBytes,
          max_image_pixels: config.api.maxImagePixels,
        },
        usage_today: {
          date: today.date,
          jobs: today.jobs,
          upstream_calls: today.upstream_calls,
          credits_saved: today.credits_saved,
        },
        // Set by the operator (`npm run keys -- budget`); a job over it waits with waiting_reason budget_exhausted.
        budget: { daily: budgetPeriodView(budget.daily), monthly: budgetPeriodView(budget.monthly) },
        // The signing secret lets its holder forge deliveries to the tenant's receivers: write keys only.
        ...(scopes.includes('jobs:write') ? { webhook_secret: secrets.current } : {}),
        previous_webhook_secret_expires_at: secrets.previousExpiresAt,
      };
    },
  });

  app.route({
    ...routeOf(ops.getAccountUsage, guards),
    handler: async (request) => {
      const { from, to } = usageRange(request.query);
      const days = await usage.days(tenantOf(request), from, to);
      return { object: 'usage' as const, from, to, data: days, totals: usageTotals(days) };
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
