import type { WebhookPayload } from '@cutout/shared/infra';
import { endpointIdOf, type DeliveryRecord } from '@cutout/shared/stores';
import type { RedeliveryDeps } from './redelivery.ts';

/** Failed deliveries one recover call queues at most; `has_more` asks for another call. */
const MAX_RECOVERED_PER_CALL = 10_000;
const CHUNK = 500;

export interface Recovery {
  queued: number;
  /** Failed deliveries left alone because their URL is disabled (a 410): enable it, then recover again. */
  endpointDisabled: number;
  hasMore: boolean;
}

const payloadOf = (record: DeliveryRecord): WebhookPayload => ({
  messageId: record.webhookId,
  type: record.eventType,
  jobId: record.jobId,
  tenantId: record.tenantId,
  ...(record.batchId ? { batchId: record.batchId } : {}),
});

/**
 * Queues every failed delivery of the tenant's events created since `sinceMs` again, oldest
 * first, once each: a queued one leaves the failed index (it is pending again), and the
 * outbox's deduplication keeps a second call from adding another delivery of the same event.
 * Same `webhook-id`s, fresh retry schedules. Deliveries to a URL disabled by a 410 are
 * counted, not sent. Each endpoint with an open circuit gets its probe now.
 */
export async function recoverDeliveries(deps: RedeliveryDeps, tenantId: string, sinceMs: number): Promise<Recovery> {
  let queued = 0;
  // Read on by creation time; what this call already handled (sent, or disabled and left in the index) is skipped by id.
  let fromMs = sinceMs;
  const handled = new Set<string>();
  const disabled = new Set<string>();
  const endpoints = new Set<string>();
  while (handled.size < MAX_RECOVERED_PER_CALL) {
    const records = await deps.deliveries.failedSince(tenantId, fromMs, 2 * CHUNK);
    const fresh = records
      .filter((record) => !handled.has(record.webhookId))
      .slice(0, Math.min(CHUNK, MAX_RECOVERED_PER_CALL - handled.size));
    if (fresh.length === 0) {
      if (records.length < 2 * CHUNK) break;
      fromMs = Date.parse(records.at(-1)!.createdAt) + 1;
      continue;
    }
    const gone = await deps.goneEndpoints.goneSinceMany(
      tenantId,
      fresh.map((record) => record.url ?? ''),
    );
    const sendable = fresh.filter((record, i) => record.url && !gone[i]);
    for (const record of fresh) handled.add(record.webhookId);
    for (const record of fresh) if (!sendable.includes(record)) disabled.add(record.webhookId);
    // Jobs show their webhook pending again before the deliveries can run, as a single redelivery does.
    await Promise.all(
      sendable
        .filter((record) => !record.batchId)
        .map((record) =>
          deps.jobs.setWebhook(record.jobId, {
            state: 'pending',
            attempts: 0,
            lastStatusCode: record.lastStatusCode,
            lastError: record.lastError,
            lastAttemptAt: record.lastAttemptAt,
          }),
        ),
    );
    queued += await deps.outbox.redeliverMany(sendable.map(payloadOf));
    for (const record of sendable) endpoints.add(endpointIdOf(tenantId, record.url!));
    fromMs = Date.parse(fresh.at(-1)!.createdAt);
  }
  for (const endpoint of endpoints) await deps.outbox.wake(await deps.gate.probeNow(endpoint));
  const rest = await deps.deliveries.failedSince(tenantId, fromMs, 2 * CHUNK);
  return { queued, endpointDisabled: disabled.size, hasMore: rest.some((record) => !handled.has(record.webhookId)) };
}
