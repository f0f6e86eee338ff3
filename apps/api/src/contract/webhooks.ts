import { z } from 'zod';
import { jobViewSchema, WEBHOOK_STATES } from '@cutout/shared/views';
import { batchIdParams, jobIdParams, listOf, pageQuery } from './common.ts';
import { publicUrl, type FieldRules } from './fields.ts';
import type { OperationSpec } from './operation.ts';

const timestamp = z.iso.datetime();
const EVENT_TYPES = ['job.succeeded', 'job.failed', 'batch.completed'] as const;

const webhookAttemptSchema = z
  .object({
    attempted_at: timestamp,
    event_type: z.enum(EVENT_TYPES),
    webhook_id: z.string().describe('The same on every attempt and redelivery of an event'),
    status_code: z.int().nullable().describe('null when no answer came (refused, timed out, address not allowed)'),
    duration_ms: z.int(),
    error: z.string().nullable(),
  })
  .meta({ id: 'WebhookAttempt' });

const webhookDeliverySchema = z
  .object({
    object: z.literal('webhook_delivery'),
    webhook_id: z.string(),
    event_type: z.enum(EVENT_TYPES),
    job_id: z.string().nullable(),
    batch_id: z.string().nullable(),
    url: z.string().nullable(),
    state: z.enum(WEBHOOK_STATES),
    attempts: z.int(),
    last_status_code: z.int().nullable(),
    last_error: z.string().nullable(),
    last_attempt_at: timestamp.nullable(),
    next_attempt_at: timestamp.nullable(),
    delivered_at: timestamp.nullable(),
    created_at: timestamp,
  })
  .meta({ id: 'WebhookDelivery', description: 'An event and the state of its latest delivery' });

const webhookEndpointSchema = z
  .object({
    object: z.literal('webhook_endpoint'),
    url: z.string(),
    state: z
      .enum(['enabled', 'failing', 'disabled'])
      .describe("disabled: it answered 410 (nothing is sent until enabled); failing: its origin's circuit is open"),
    disabled_at: timestamp.nullable(),
    consecutive_failures: z.int(),
    failing_since: timestamp.nullable(),
    next_probe_at: timestamp.nullable(),
    in_flight: z.int().describe('Deliveries to its origin under way, across every worker'),
    waiting: z.int().describe('Deliveries waiting for a place at its origin'),
    last_attempt_at: timestamp.nullable(),
  })
  .meta({ id: 'WebhookEndpoint' });

const webhookRecoverySchema = z
  .object({
    object: z.literal('webhook_recovery'),
    since: timestamp,
    queued: z.int().describe('Failed deliveries queued again, once each, with their webhook-ids'),
    endpoint_disabled: z
      .int()
      .describe('Failed deliveries to URLs disabled by a 410: counted, not sent (enable the URL first)'),
    has_more: z.boolean().describe('More failed deliveries remain: call again'),
  })
  .meta({ id: 'WebhookRecovery' });

const ISO_TIME = /^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:\d\d))?$/;
const SINCE_MESSAGE = 'since must be an ISO 8601 time with its zone, e.g. 2026-11-26T15:00:00Z';
const since = z
  .string({ error: `${SINCE_MESSAGE} (it is required)` })
  .regex(ISO_TIME, SINCE_MESSAGE)
  .transform((text, ctx) => {
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) ctx.addIssue({ code: 'custom', message: SINCE_MESSAGE });
    return ms;
  })
  .describe('An ISO 8601 time with its zone');

const redeliveryLimit = 'Counts against WEBHOOK_REDELIVERIES_PER_MINUTE per tenant (429 beyond).';

/** Webhook deliveries: a job's attempts, redelivery of an event, the tenant's delivery log, recovery, endpoints. */
export function webhookOperations({ rules }: { rules: FieldRules }) {
  return {
    listJobWebhookAttempts: {
      method: 'GET',
      url: '/v1/jobs/:id/webhook-attempts',
      operationId: 'listJobWebhookAttempts',
      tags: ['webhooks'],
      scope: 'jobs:read',
      summary: "A job's webhook delivery attempts, newest first (the last 50)",
      params: jobIdParams,
      responses: {
        200: { description: 'Every attempt kept; one page holds them all', json: listOf(webhookAttemptSchema) },
      },
      errors: ['not_found'],
    },
    redeliverJobWebhook: {
      method: 'POST',
      url: '/v1/jobs/:id/webhook/redeliver',
      operationId: 'redeliverJobWebhook',
      tags: ['webhooks'],
      scope: 'jobs:write',
      summary: "Send a finished job's event again, with the same webhook-id",
      description: `Enables the URL again if it answered 410 and lets an open circuit probe now. While a delivery of the event is pending nothing more is queued: that delivery is tried now, and the answer is 202 with the job as it is. ${redeliveryLimit}`,
      params: jobIdParams,
      responses: { 202: { description: 'The job, its webhook pending', json: jobViewSchema } },
      errors: ['not_found', 'job_not_finished', 'no_webhook_url', 'no_webhook_event'],
    },
    redeliverBatchWebhook: {
      method: 'POST',
      url: '/v1/batches/:id/webhook/redeliver',
      operationId: 'redeliverBatchWebhook',
      tags: ['webhooks'],
      scope: 'jobs:write',
      summary: "Send a completed batch's batch.completed again, with the same webhook-id",
      description: `As for a job: at most one pending delivery per event. ${redeliveryLimit}`,
      params: batchIdParams,
      responses: { 202: { description: 'The delivery of the event, pending', json: webhookDeliverySchema } },
      errors: ['not_found', 'batch_not_finished', 'no_webhook_url'],
    },
    listWebhookDeliveries: {
      method: 'GET',
      url: '/v1/webhook-deliveries',
      operationId: 'listWebhookDeliveries',
      tags: ['webhooks'],
      scope: 'jobs:read',
      summary: "The tenant's delivery log across jobs and batches, newest first",
      querystring: z.object({
        status: z.enum(WEBHOOK_STATES, { error: `status must be one of ${WEBHOOK_STATES.join(', ')}` }).optional(),
        since: since.optional(),
        ...pageQuery,
      }),
      responses: { 200: { description: 'A page of deliveries', json: listOf(webhookDeliverySchema) } },
      errors: ['invalid_request', 'invalid_cursor'],
    },
    recoverWebhookDeliveries: {
      method: 'POST',
      url: '/v1/webhook-deliveries/recover',
      operationId: 'recoverWebhookDeliveries',
      tags: ['webhooks'],
      scope: 'jobs:write',
      summary: 'Queue every failed delivery since a time again, once each, with the same webhook-ids',
      description: `Up to 10,000 per call (has_more says when to call again). ${redeliveryLimit}`,
      body: z.strictObject({ since }),
      responses: { 202: { description: 'How many were queued', json: webhookRecoverySchema } },
      errors: ['invalid_request', 'unknown_field', 'unsupported_media_type'],
    },
    listWebhookEndpoints: {
      method: 'GET',
      url: '/v1/webhook-endpoints',
      operationId: 'listWebhookEndpoints',
      tags: ['webhooks'],
      scope: 'jobs:read',
      summary: "The URLs the tenant's webhooks go to, and their state",
      querystring: z.object(pageQuery),
      responses: {
        200: { description: 'A page of endpoints, most recent activity first', json: listOf(webhookEndpointSchema) },
      },
      errors: ['invalid_request', 'invalid_cursor'],
    },
    enableWebhookEndpoint: {
      method: 'POST',
      url: '/v1/webhook-endpoints/enable',
      operationId: 'enableWebhookEndpoint',
      tags: ['webhooks'],
      scope: 'jobs:write',
      summary: 'Enable a URL again: lift a 410, and let an open circuit probe now',
      body: z.strictObject({ url: publicUrl(rules.urlPolicy, 'url', 'invalid_webhook_url') }),
      responses: { 200: { description: 'The endpoint', json: webhookEndpointSchema } },
      errors: ['not_found', 'invalid_request', 'unknown_field', 'unsupported_media_type', 'invalid_webhook_url'],
    },
  } as const satisfies Record<string, OperationSpec>;
}
