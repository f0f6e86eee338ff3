import type { DeliveryPosition, DeliveryRecord, WebhookDeliveryLog, WebhookState } from '@cutout/shared/stores';
import { ApiError } from '../http/errors.ts';

/** One entry of `GET /v1/webhook-deliveries`: an event and the state of its latest delivery. */
export const toDeliveryView = (record: DeliveryRecord) => ({
  object: 'webhook_delivery' as const,
  webhook_id: record.webhookId,
  event_type: record.eventType,
  job_id: record.batchId ? null : record.jobId,
  batch_id: record.batchId ?? null,
  url: record.url ?? null,
  state: record.state,
  attempts: record.attempts,
  last_status_code: record.lastStatusCode ?? null,
  last_error: record.lastError ?? null,
  last_attempt_at: record.lastAttemptAt ?? null,
  next_attempt_at: record.nextAttemptAt ?? null,
  delivered_at: record.deliveredAt ?? null,
  created_at: record.createdAt,
});

const encodeCursor = ({ createdMs, webhookId }: DeliveryPosition): string =>
  Buffer.from(`d${createdMs}:${webhookId}`).toString('base64url');

function decodeCursor(cursor: string): DeliveryPosition {
  const match = /^d(\d{1,16}):(msg_[0-9a-f]{32})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new ApiError('invalid_cursor', 'The cursor is not one this API returned');
  return { createdMs: Number(match[1]), webhookId: match[2]! };
}

/** `since` is epoch ms (the operation's schema parsed it). */
export interface DeliveryListQuery {
  status?: WebhookState;
  since?: number;
  limit: number;
  cursor?: string;
}

/** A page of the tenant's delivery log, newest first, as `{data, next_cursor}`. */
export async function deliveryPage(
  deliveries: WebhookDeliveryLog,
  tenantId: string,
  { status, since, limit, cursor }: DeliveryListQuery,
) {
  const page = await deliveries.page(tenantId, {
    status,
    sinceMs: since,
    before: cursor === undefined ? undefined : decodeCursor(cursor),
    limit,
  });
  return { data: page.records.map(toDeliveryView), next_cursor: page.next ? encodeCursor(page.next) : null };
}
