import { z } from 'zod';
import type { OperationSpec } from './operation.ts';

const check = z.object({ ok: z.boolean(), detail: z.string().optional() });

const readinessSchema = z
  .object({
    status: z
      .enum(['ready', 'degraded', 'not_ready'])
      .describe('degraded: the API keeps accepting jobs, but the workers hold them (e.g. ByByBG refuses the key)'),
    checks: z.object({
      redis: check,
      s3: check,
      upstream: check.extend({
        reason: z
          .enum(['upstream_unauthorized', 'upstream_out_of_credit'])
          .nullable()
          .optional()
          .describe('Why the workers hold every job, when they do'),
        rate_per_second: z.number().nullable().optional(),
        rate_mode: z.enum(['fixed', 'discovering']).nullable().optional(),
        rate_reason: z.string().nullable().optional(),
      }),
    }),
  })
  .meta({ id: 'Readiness' });

/** Liveness, readiness and metrics: public, for load balancers and Prometheus. */
export function healthOperations() {
  return {
    getHealth: {
      method: 'GET',
      url: '/healthz',
      operationId: 'getHealth',
      tags: ['operations'],
      summary: 'Liveness: the process answers',
      responses: { 200: { description: 'Alive', json: z.object({ status: z.literal('ok') }) } },
      errors: [],
    },
    getReadiness: {
      method: 'GET',
      url: '/readyz',
      operationId: 'getReadiness',
      tags: ['operations'],
      summary: 'Readiness: Redis (with noeviction), the S3 bucket, and what ByByBG says of the key',
      responses: {
        200: { description: 'Ready, or degraded (still accepting jobs)', json: readinessSchema },
        503: { description: 'Redis or S3 cannot be reached: take this process out of rotation', json: readinessSchema },
      },
      errors: [],
    },
    getMetrics: {
      method: 'GET',
      url: '/metrics',
      operationId: 'getMetrics',
      tags: ['operations'],
      summary: "Prometheus metrics (under npm start, the worker's too)",
      responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': z.string() } } },
      errors: [],
    },
  } as const satisfies Record<string, OperationSpec>;
}
