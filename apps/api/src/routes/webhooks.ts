import type { FastifyInstance, onRequestAsyncHookHandler } from 'fastify';
import { toJobView, type WebhookAttempt } from '@cutout/shared';
import type { AppDeps } from '../app.ts';
import { ownJob } from '../owned.ts';
import { redeliverWebhook } from '../webhook-redelivery.ts';

interface IdParams { Params: { id: string } }

const toAttemptView = (attempt: WebhookAttempt) => ({
  attempted_at: attempt.attemptedAt,
  event_type: attempt.eventType,
  webhook_id: attempt.webhookId,
  status_code: attempt.statusCode,
  duration_ms: attempt.durationMs,
  error: attempt.error,
});

/** A job's webhook deliveries: the attempt log, and sending the final event again. */
export function webhookRoutes(
  app: FastifyInstance,
  { config, jobs, queues, storage, webhookAttempts, goneEndpoints }: AppDeps,
  { canRead, canWrite }: { canRead: onRequestAsyncHookHandler; canWrite: onRequestAsyncHookHandler },
): void {

  // At most the last 50 attempts are kept, so one page holds them all; `next_cursor` keeps the list shape.
  app.get<IdParams>('/v1/jobs/:id/webhook-attempts', { onRequest: canRead }, async (request) => {
    const record = await ownJob(jobs, request);
    return { data: (await webhookAttempts.list(record.id)).map(toAttemptView), next_cursor: null };
  });

  app.post<IdParams>('/v1/jobs/:id/webhook/redeliver', { onRequest: canWrite }, async (request, reply) => {
    const deps = { jobs, webhooks: queues.webhooks, webhookAttempts: config.webhooks.retryScheduleMs.length, goneEndpoints };
    const record = await redeliverWebhook(deps, await ownJob(jobs, request));
    request.log.info({ jobId: record.id }, 'webhook redelivery queued');
    return reply.status(202).send(await toJobView(record, storage, config.api.resultUrlTtlMs));
  });
}
