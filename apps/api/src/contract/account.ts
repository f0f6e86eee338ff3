import { z } from 'zod';
import { ALL_SCOPES } from '@cutout/shared';
import type { OperationSpec } from './operation.ts';

const timestamp = z.iso.datetime();

export const accountSchema = z.object({
  tenant_id: z.string(),
  scopes: z.array(z.enum(ALL_SCOPES)).describe("The calling key's scopes"),
  limits: z.object({ requests_per_minute: z.int(), max_upload_bytes: z.int(), max_image_pixels: z.int() }),
  usage_today: z.object({
    date: z.string().describe('The UTC day, YYYY-MM-DD'),
    jobs: z.int().describe('Jobs submitted'),
    upstream_calls: z.int().describe('Requests made to ByByBG for them'),
    credits_saved: z.int().describe('ByByBG calls saved by reusing the result of an identical image'),
  }),
  webhook_secret: z.string().optional().describe('Signs every delivery (Standard Webhooks); shown to jobs:write keys only, since it could forge deliveries'),
  previous_webhook_secret_expires_at: timestamp.nullable().describe('While a rotated-out secret still signs beside the new one'),
}).meta({ id: 'Account' });

export const rotatedSecretSchema = z.object({
  webhook_secret: z.string().describe('Signs every delivery from now on'),
  previous_secret_expires_at: timestamp.nullable().describe('Until then the old secret signs too'),
}).meta({ id: 'WebhookSecretRotation' });

/** The tenant: its account, and the rotation of its webhook signing secret. */
export function accountOperations() {
  return {
    getAccount: {
      method: 'GET', url: '/v1/account', operationId: 'getAccount', tags: ['account'], scope: 'jobs:read',
      summary: 'The tenant, its limits, today\'s usage and its webhook signing secret',
      responses: { 200: { description: 'The account', json: accountSchema } },
      errors: [],
    },
    rotateWebhookSecret: {
      method: 'POST', url: '/v1/account/webhook-secret/rotate', operationId: 'rotateWebhookSecret', tags: ['account'], scope: 'jobs:write',
      summary: 'A new webhook signing secret; the old one keeps signing beside it for WEBHOOK_SECRET_GRACE',
      responses: { 200: { description: 'The new secret', json: rotatedSecretSchema } },
      errors: [],
    },
  } as const satisfies Record<string, OperationSpec>;
}
