import { WEBHOOK_STATES, type DeliveryPosition, type DeliveryRecord, type WebhookDeliveryLog, type WebhookState } from '@cutout/shared';
import { ApiError } from './errors.ts';
import { pageSizeOf } from './cursor.ts';

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

const ISO_TIME = /^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|[+-]\d\d:\d\d))?$/;

/** `since` as epoch ms: an ISO 8601 date or time with its zone (e.g. 2026-11-26T15:00:00Z); 400 otherwise. */
export function parseSince(value: unknown, { required }: { required: boolean }): number | undefined {
  if (value === undefined && !required) return undefined;
  const ms = typeof value === 'string' && ISO_TIME.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) {
    throw new ApiError('invalid_request', `since must be an ISO 8601 time with its zone, e.g. 2026-11-26T15:00:00Z${value === undefined ? ' (it is required)' : ''}`);
  }
  return ms;
}

const encodeCursor = ({ createdMs, webhookId }: DeliveryPosition): string => Buffer.from(`d${createdMs}:${webhookId}`).toString('base64url');

function decodeCursor(cursor: string): DeliveryPosition {
  const match = /^d(\d{1,16}):(msg_[0-9a-f]{32})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new ApiError('invalid_cursor', 'The cursor is not one this API returned');
  return { createdMs: Number(match[1]), webhookId: match[2]! };
}

export interface DeliveryListQuery { status?: string; since?: string; limit?: string; cursor?: string }

/** A page of the tenant's delivery log, newest first, as `{data, next_cursor}`. */
export async function deliveryPage(deliveries: WebhookDeliveryLog, tenantId: string, { status, since, limit = '20', cursor }: DeliveryListQuery) {
  if (status !== undefined && !WEBHOOK_STATES.includes(status as WebhookState)) {
    throw new ApiError('invalid_request', `status must be one of ${WEBHOOK_STATES.join(', ')}`);
  }
  const page = await deliveries.page(tenantId, {
    status: status as WebhookState | undefined,
    sinceMs: parseSince(since, { required: false }),
    before: cursor === undefined ? undefined : decodeCursor(cursor),
    limit: pageSizeOf(limit),
  });
  return { data: page.records.map(toDeliveryView), next_cursor: page.next ? encodeCursor(page.next) : null };
}
