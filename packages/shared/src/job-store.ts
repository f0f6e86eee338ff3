import type { Redis } from 'ioredis';

export type JobStatus = 'queued' | 'processing' | 'succeeded' | 'failed' | 'canceled';
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'canceled'];

export interface JobError { code: string; message: string; retryable: boolean }

export type WebhookState = 'pending' | 'delivered' | 'failed';
export interface WebhookDelivery {
  state: WebhookState;
  attempts: number;
  lastStatusCode?: number;
  lastError?: string;
  lastAttemptAt?: string;
  deliveredAt?: string;
}

export interface JobRecord {
  id: string;
  tenantId: string;
  status: JobStatus;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  attempts: number;
  upstreamCalls: number;
  originalKey: string;
  originalBytes: number;
  originalContentType: string;
  /** SHA-256 of the original: the same image with the same options is processed once. */
  originalSha256?: string;
  /** When ByByBG first answered 429 for this job; bounds how long it may wait. */
  rateLimitedSince?: string;
  /** 1 when the result was reused from an identical earlier job instead of calling ByByBG. */
  creditsSaved?: number;
  resultKey?: string;
  resultBytes?: number;
  resultContentType?: string;
  error?: JobError;
  /** Why a queued job is waiting, e.g. `upstream_rate_limited`; empty once it runs. */
  waitingReason?: string;
  metadata?: Record<string, unknown>;
  options?: Record<string, string>;
  webhookUrl?: string;
  webhook?: WebhookDelivery;
}

/** Fields stored as JSON; the rest are strings or numbers. */
const JSON_FIELDS = new Set(['error', 'metadata', 'options', 'webhook']);
const NUMBER_FIELDS = new Set(['attempts', 'upstreamCalls', 'originalBytes', 'resultBytes', 'creditsSaved']);

function encode(fields: Partial<JobRecord>): string[] {
  const flat: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    flat.push(name, JSON_FIELDS.has(name) ? JSON.stringify(value) : String(value));
  }
  return flat;
}

function decode(hash: Record<string, string>): JobRecord | null {
  if (!hash.id) return null;
  const record: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(hash)) {
    if (value === '') continue; // a cleared field
    record[name] = JSON_FIELDS.has(name) ? JSON.parse(value) : NUMBER_FIELDS.has(name) ? Number(value) : value;
  }
  return record as unknown as JobRecord;
}

/**
 * Sets fields only when the job's current status is one of ARGV[1] (comma-separated);
 * increments the numeric fields named in ARGV[3] (comma-separated, by 1); sets a TTL of
 * ARGV[2] ms when it is above 0 — a job that ended — and then announces the id on the
 * KEYS[2] channel for clients waiting with `Prefer: wait`. Returns the record, or nil.
 */
const TRANSITION = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return nil end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == status then allowed = true end end
if not allowed then return nil end
if #ARGV > 3 then redis.call('HSET', KEYS[1], unpack(ARGV, 4)) end
for f in string.gmatch(ARGV[3], '[^,]+') do redis.call('HINCRBY', KEYS[1], f, 1) end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PUBLISH', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
end
return redis.call('HGETALL', KEYS[1])
`;

export interface JobStore {
  create(record: JobRecord): Promise<void>;
  get(id: string): Promise<JobRecord | null>;
  /** Deletes a record that never became visible (its enqueue failed). */
  remove(record: Pick<JobRecord, 'id' | 'tenantId'>): Promise<void>;
  /** Applies `fields` only when the job is in one of `from`; returns the updated record or null. */
  transition(id: string, from: readonly JobStatus[], fields: Partial<JobRecord>, increment?: ('attempts' | 'upstreamCalls')[]): Promise<JobRecord | null>;
  setWebhook(id: string, delivery: WebhookDelivery): Promise<void>;
  /** Ids of a tenant's jobs, newest first, after the `before` position (exclusive). */
  listIds(tenantId: string, count: number, before?: ListPosition): Promise<(ListPosition & { id: string })[]>;
  /** Drops index entries whose records have expired. */
  forget(tenantId: string, ids: readonly string[]): Promise<void>;
  /** The pub/sub channel on which ended jobs' ids are announced. */
  readonly endedChannel: string;
}

/** Where a page of a tenant's jobs ends: creation time in ms, and the id for ties. */
export interface ListPosition { createdMs: number; id: string }

export function makeJobStore({ redis, prefix, retentionMs }: { redis: Redis; prefix: string; retentionMs: number }): JobStore {
  const jobKey = (id: string) => `${prefix}:job:${id}`;
  const tenantIndex = (tenantId: string) => `${prefix}:tenant:${tenantId}:jobs`;
  const endedChannel = `${prefix}:jobs:ended`;

  return {
    async create(record) {
      await redis
        .multi()
        .hset(jobKey(record.id), ...encode(record))
        .zadd(tenantIndex(record.tenantId), Date.parse(record.createdAt), record.id)
        // Index entries far older than any record can live are dropped as new jobs arrive.
        .zremrangebyscore(tenantIndex(record.tenantId), '-inf', Date.parse(record.createdAt) - 2 * retentionMs)
        .exec();
    },
    async remove({ id, tenantId }) {
      await redis.multi().del(jobKey(id)).zrem(tenantIndex(tenantId), id).exec();
    },
    async get(id) {
      return decode(await redis.hgetall(jobKey(id)));
    },
    async transition(id, from, fields, increment = []) {
      const ttl = fields.status && TERMINAL_STATUSES.includes(fields.status) ? retentionMs : 0;
      const flat = (await redis.eval(TRANSITION, 2, jobKey(id), endedChannel, from.join(','), String(ttl), increment.join(','), ...encode(fields))) as string[] | null;
      if (!flat) return null;
      const hash: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
      return decode(hash);
    },
    async setWebhook(id, delivery) {
      // Only an existing record is updated, so an expired job is not recreated as a stub.
      await redis.eval(
        `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'webhook', ARGV[1]) end`,
        1, jobKey(id), JSON.stringify(delivery),
      );
    },
    async listIds(tenantId, count, before) {
      // Newest first; equal timestamps are ordered by id (Redis orders equal scores by member).
      const max = before ? String(before.createdMs) : '+inf';
      const flat = await redis.zrevrangebyscore(tenantIndex(tenantId), max, '-inf', 'WITHSCORES', 'LIMIT', 0, count + 100);
      const entries: (ListPosition & { id: string })[] = [];
      for (let i = 0; i < flat.length && entries.length < count; i += 2) {
        const entry = { id: flat[i]!, createdMs: Number(flat[i + 1]) };
        if (before && entry.createdMs === before.createdMs && entry.id >= before.id) continue;
        entries.push(entry);
      }
      return entries;
    },
    async forget(tenantId, ids) {
      if (ids.length > 0) await redis.zrem(tenantIndex(tenantId), ...ids);
    },
    endedChannel,
  };
}
