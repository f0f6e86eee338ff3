import { runScript } from '../infra/scripts.ts';
import type { WebhookDelivery, WebhookState } from './job-store.ts';
import type { WebhookEventType, WebhookPayload } from '../infra/queues.ts';
import type { Redis } from '../infra/redis.ts';
import { tenantEndpointsKey } from './webhook-endpoints.ts';

/**
 * The tenant's delivery log: one entry per event (per `webhook-id`), across jobs and
 * batches, with the state of its latest delivery. `GET /v1/webhook-deliveries` pages it and
 * `POST /v1/webhook-deliveries/recover` queues its failed entries again.
 *
 * Redis: a hash per event (`<prefix>:webhook-delivery:<id>`, kept for the job retention
 * after its last change), the tenant's index of events by creation time, and a second
 * index of the failed ones, so recovery reads only what it sends.
 */
export interface DeliveryRecord extends WebhookDelivery {
  webhookId: string;
  eventType: WebhookEventType;
  tenantId: string;
  /** The job, or for a batch event the batch (`batchId` set too). */
  jobId: string;
  batchId?: string;
  url?: string;
  createdAt: string;
}

/** The event a log entry is about (a queue payload, plus the URL when it is known). */
type DeliveryEvent = Pick<WebhookPayload, 'messageId' | 'type' | 'tenantId' | 'jobId' | 'batchId'> & { url?: string };

/** Fields of the latest delivery; `null` clears one. */
export type DeliveryFields = {
  [K in 'state' | 'attempts' | 'lastStatusCode' | 'lastError' | 'lastAttemptAt' | 'nextAttemptAt' | 'deliveredAt']?:
    | DeliveryRecord[K]
    | null;
};

/** A job's delivery state as log fields: what it leaves unset is cleared. */
export const deliveryFieldsOf = (delivery: WebhookDelivery): DeliveryFields => ({
  state: delivery.state,
  attempts: delivery.attempts,
  lastStatusCode: delivery.lastStatusCode ?? null,
  lastError: delivery.lastError ?? null,
  lastAttemptAt: delivery.lastAttemptAt ?? null,
  nextAttemptAt: delivery.nextAttemptAt ?? null,
  deliveredAt: delivery.deliveredAt ?? null,
});

/** Where a page of the log ends: creation time in ms, and the webhook id for ties. */
export interface DeliveryPosition {
  createdMs: number;
  webhookId: string;
}

interface DeliveryQuery {
  status?: WebhookState;
  sinceMs?: number;
  before?: DeliveryPosition;
  limit: number;
}

export interface WebhookDeliveryLog {
  /** Creates the event's entry if it has none and sets `fields`; with `ifNew`, an existing entry is left as it is. */
  write(event: DeliveryEvent, fields: DeliveryFields, options?: { ifNew?: boolean }): Promise<void>;
  get(webhookId: string): Promise<DeliveryRecord | null>;
  /** Newest first, after `before`, created at or after `sinceMs`; `next` is null on the last page. */
  page(tenantId: string, query: DeliveryQuery): Promise<{ records: DeliveryRecord[]; next: DeliveryPosition | null }>;
  /** The tenant's failed entries created at or after `sinceMs`, oldest first. */
  failedSince(tenantId: string, sinceMs: number, limit: number): Promise<DeliveryRecord[]>;
  /** URLs the tenant's deliveries were attempted at, most recently used first (up to 1,000). */
  endpoints(tenantId: string): Promise<{ url: string; lastAttemptAt: string }[]>;
  /** Drops an entry whose event can no longer be sent (its record expired). */
  forget(tenantId: string, webhookId: string): Promise<void>;
}

/** Tenant endpoints remembered for `GET /v1/webhook-endpoints`; the least recently used go first. */
const MAX_ENDPOINTS_KEPT = 1000;
/** Index entries scanned for one filtered page at most; the page then ends early with a cursor. */
const MAX_SCANNED = 2000;

/**
 * KEYS: entry, tenant index, failed index, tenant endpoints. ARGV: webhook id, retention ms,
 * now ms, ifNew (1/0), endpoint URL to remember ('' for none), then field/value pairs
 * ('' clears a field). The failed index follows the entry's state.
 */
const WRITE = `
local created = redis.call('HGET', KEYS[1], 'createdMs')
if created and ARGV[4] == '1' then return 0 end
local now = tonumber(ARGV[3])
local retention = tonumber(ARGV[2])
if not created then
  created = ARGV[3]
  redis.call('HSET', KEYS[1], 'createdMs', created)
  redis.call('ZADD', KEYS[2], created, ARGV[1])
  -- Entries far older than any entry can live are dropped as new ones arrive.
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 2 * retention)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 2 * retention)
  redis.call('PEXPIRE', KEYS[2], 2 * retention)
end
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
if redis.call('HGET', KEYS[1], 'state') == 'failed' then
  redis.call('ZADD', KEYS[3], created, ARGV[1])
  redis.call('PEXPIRE', KEYS[3], 2 * retention)
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], retention)
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[4], now, ARGV[5])
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -${MAX_ENDPOINTS_KEPT + 1})
  redis.call('PEXPIRE', KEYS[4], retention)
end
return 1
`;

const NUMBER_FIELDS = new Set(['attempts', 'lastStatusCode']);

function decode(hash: Record<string, string>): DeliveryRecord | null {
  if (!hash.webhookId || !hash.createdMs) return null;
  const record: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(hash)) {
    if (value === '' || name === 'createdMs') continue;
    record[name] = NUMBER_FIELDS.has(name) ? Number(value) : value;
  }
  record.createdAt = new Date(Number(hash.createdMs)).toISOString();
  record.attempts = Number(hash.attempts ?? 0);
  record.state ??= 'pending';
  return record as unknown as DeliveryRecord;
}

export function makeWebhookDeliveryLog({
  redis,
  prefix,
  retentionMs,
}: {
  redis: Redis;
  prefix: string;
  retentionMs: number;
}): WebhookDeliveryLog {
  const entryKey = (webhookId: string) => `${prefix}:webhook-delivery:${webhookId}`;
  const indexKey = (tenantId: string) => `${prefix}:tenant:${tenantId}:webhook-deliveries`;
  const failedKey = (tenantId: string) => `${indexKey(tenantId)}:failed`;

  async function getMany(ids: readonly string[]): Promise<(DeliveryRecord | null)[]> {
    if (ids.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hgetall(entryKey(id));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, hash]) => {
      if (error) throw error;
      return decode(hash as Record<string, string>);
    });
  }

  async function forgetMany(tenantId: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0)
      await redis
        .multi()
        .zrem(indexKey(tenantId), ...ids)
        .zrem(failedKey(tenantId), ...ids)
        .exec();
  }

  /** Up to `count` index entries after `before`, newest first; equal timestamps are ordered by id. */
  async function entriesAfter(
    key: string,
    before: DeliveryPosition | undefined,
    sinceMs: number | undefined,
    count: number,
  ): Promise<DeliveryPosition[]> {
    const max = before ? String(before.createdMs) : '+inf';
    const min = sinceMs === undefined ? '-inf' : String(sinceMs);
    const flat = await redis.zrevrangebyscore(key, max, min, 'WITHSCORES', 'LIMIT', 0, count + 100);
    const entries: DeliveryPosition[] = [];
    for (let i = 0; i < flat.length && entries.length < count; i += 2) {
      const entry = { webhookId: flat[i]!, createdMs: Number(flat[i + 1]) };
      if (before && entry.createdMs === before.createdMs && entry.webhookId >= before.webhookId) continue;
      entries.push(entry);
    }
    return entries;
  }

  return {
    async write(event, fields, { ifNew = false } = {}) {
      const flat: string[] = [
        'webhookId',
        event.messageId,
        'eventType',
        event.type,
        'tenantId',
        event.tenantId,
        'jobId',
        event.jobId,
      ];
      if (event.batchId) flat.push('batchId', event.batchId);
      if (event.url) flat.push('url', event.url);
      for (const [name, value] of Object.entries(fields)) {
        if (value !== undefined) flat.push(name, value === null ? '' : String(value));
      }
      const touchedEndpoint = event.url && fields.lastAttemptAt ? event.url : '';
      await runScript(
        redis,
        WRITE,
        4,
        entryKey(event.messageId),
        indexKey(event.tenantId),
        failedKey(event.tenantId),
        tenantEndpointsKey(prefix, event.tenantId),
        event.messageId,
        String(retentionMs),
        String(Date.now()),
        ifNew ? '1' : '0',
        touchedEndpoint,
        ...flat,
      );
    },
    async get(webhookId) {
      return decode(await redis.hgetall(entryKey(webhookId)));
    },
    async page(tenantId, { status, sinceMs, before, limit }) {
      // The failed index holds exactly the failed entries; other filters read the full index.
      const key = status === 'failed' ? failedKey(tenantId) : indexKey(tenantId);
      const records: DeliveryRecord[] = [];
      let position = before;
      let scanned = 0;
      for (;;) {
        const batch = Math.min(Math.max(limit * 2, 50), MAX_SCANNED - scanned);
        const entries = await entriesAfter(key, position, sinceMs, batch);
        const found = await getMany(entries.map((entry) => entry.webhookId));
        await forgetMany(
          tenantId,
          entries.filter((_, i) => !found[i]).map((entry) => entry.webhookId),
        );
        for (const [i, entry] of entries.entries()) {
          position = entry;
          scanned += 1;
          const record = found[i];
          if (record && (!status || record.state === status)) records.push(record);
          if (records.length === limit) {
            const more = i < entries.length - 1 || (await entriesAfter(key, position, sinceMs, 1)).length > 0;
            return { records, next: more ? position : null };
          }
        }
        if (entries.length < batch) return { records, next: null };
        if (scanned >= MAX_SCANNED) return { records, next: position ?? null };
      }
    },
    async failedSince(tenantId, sinceMs, limit) {
      const ids = await redis.zrangebyscore(failedKey(tenantId), String(sinceMs), '+inf', 'LIMIT', 0, limit);
      const found = await getMany(ids);
      await forgetMany(
        tenantId,
        ids.filter((_, i) => !found[i]),
      );
      return found.filter((record): record is DeliveryRecord => record !== null);
    },
    async endpoints(tenantId) {
      const flat = await redis.zrevrange(tenantEndpointsKey(prefix, tenantId), 0, -1, 'WITHSCORES');
      const used: { url: string; lastAttemptAt: string }[] = [];
      for (let i = 0; i < flat.length; i += 2)
        used.push({ url: flat[i]!, lastAttemptAt: new Date(Number(flat[i + 1])).toISOString() });
      return used;
    },
    async forget(tenantId, webhookId) {
      await redis
        .multi()
        .del(entryKey(webhookId))
        .zrem(indexKey(tenantId), webhookId)
        .zrem(failedKey(tenantId), webhookId)
        .exec();
    },
  };
}
