import { z } from 'zod';
import { ALL_SCOPES } from '@cutout/shared/stores';
import { USAGE_KEEP_DAYS } from '@cutout/shared/stores';
import { documentedAs } from './fields.ts';
import type { OperationSpec } from './operation.ts';

/** Checked by usageRange (account/usage-range.ts), which words each refusal; documented as a date. */
const usageDate = (what: string) => documentedAs(z.unknown().optional(), z.iso.date().optional().describe(what));

const timestamp = z.iso.datetime();

const budgetPeriodSchema = z.object({
  limit: z.int().describe('Upstream calls the period allows'),
  used: z.int(),
  resets_at: timestamp.describe('When the period rolls over (UTC)'),
});

const usageDaySchema = z.object({
  date: z.iso.date().describe('A UTC day'),
  jobs: z.int().describe('Jobs submitted'),
  jobs_succeeded: z.int(),
  jobs_failed: z.int(),
  upstream_calls: z.int().describe('Requests made to ByByBG'),
  credits_saved: z.int().describe('ByByBG calls saved by reusing the result of an identical image'),
});

const usageSchema = z
  .object({
    object: z.literal('usage'),
    from: z.iso.date(),
    to: z.iso.date(),
    data: z.array(usageDaySchema).describe('One entry per day, oldest first'),
    totals: usageDaySchema.omit({ date: true }),
  })
  .meta({ id: 'Usage' });

const accountSchema = z
  .object({
    tenant_id: z.string(),
    scopes: z.array(z.enum(ALL_SCOPES)).describe("The calling key's scopes"),
    limits: z.object({ requests_per_minute: z.int(), max_upload_bytes: z.int(), max_image_pixels: z.int() }),
    usage_today: z.object({
      date: z.string().describe('The UTC day, YYYY-MM-DD'),
      jobs: z.int().describe('Jobs submitted'),
      upstream_calls: z.int().describe('Requests made to ByByBG for them'),
      credits_saved: z.int().describe('ByByBG calls saved by reusing the result of an identical image'),
    }),
    budget: z
      .object({ daily: budgetPeriodSchema.nullable(), monthly: budgetPeriodSchema.nullable() })
      .describe(
        'Budgets of upstream calls the operator set (npm run keys -- budget); null when a period has none. Jobs over it wait with waiting_reason budget_exhausted',
      ),
    webhook_secret: z
      .string()
      .optional()
      .describe(
        'Signs every delivery (Standard Webhooks); shown to jobs:write keys only, since it could forge deliveries',
      ),
    previous_webhook_secret_expires_at: timestamp
      .nullable()
      .describe('While a rotated-out secret still signs beside the new one'),
  })
  .meta({ id: 'Account' });

const rotatedSecretSchema = z
  .object({
    webhook_secret: z.string().describe('Signs every delivery from now on'),
    previous_secret_expires_at: timestamp.nullable().describe('Until then the old secret signs too'),
  })
  .meta({ id: 'WebhookSecretRotation' });

/** The tenant: its account, and the rotation of its webhook signing secret. */
export function accountOperations() {
  return {
    getAccount: {
      method: 'GET',
      url: '/v1/account',
      operationId: 'getAccount',
      tags: ['account'],
      scope: 'jobs:read',
      summary: "The tenant, its limits, today's usage and its webhook signing secret",
      responses: { 200: { description: 'The account', json: accountSchema } },
      errors: [],
    },
    getAccountUsage: {
      method: 'GET',
      url: '/v1/account/usage',
      operationId: 'getAccountUsage',
      tags: ['account'],
      scope: 'jobs:read',
      summary: `Usage per UTC day, as far back as it is kept (${USAGE_KEEP_DAYS} days)`,
      querystring: z.object({
        from: usageDate('First day (YYYY-MM-DD); default 30 days before to'),
        to: usageDate('Last day (YYYY-MM-DD); default today'),
      }),
      responses: { 200: { description: 'The days and their totals', json: usageSchema } },
      errors: ['invalid_request'],
    },
    rotateWebhookSecret: {
      method: 'POST',
      url: '/v1/account/webhook-secret/rotate',
      operationId: 'rotateWebhookSecret',
      tags: ['account'],
      scope: 'jobs:write',
      summary: 'A new webhook signing secret; the old one keeps signing beside it for WEBHOOK_SECRET_GRACE',
      responses: { 200: { description: 'The new secret', json: rotatedSecretSchema } },
      errors: [],
    },
  } as const satisfies Record<string, OperationSpec>;
}
