import { runScript } from '../infra/scripts.ts';
import type { Redis } from 'ioredis';
import { originalKey } from '../infra/object-keys.ts';
import type { QualityReport } from '../views/quality.ts';
import type { RenditionPlan } from '../renditions/spec.ts';

import {
  WAITING_REASONS,
  type JobErrorCode,
  type JobStatus,
  type WaitingReason,
  type WEBHOOK_STATES,
} from '../views/job-codes.ts';

import { isTerminal } from '../views/job-codes.ts';

export interface JobError {
  code: JobErrorCode;
  message: string;
  retryable: boolean;
}

/** `endpoint_failing`: not sent while the endpoint's circuit is open; it waits for the next probe. */
export type WebhookState = (typeof WEBHOOK_STATES)[number];
export interface WebhookDelivery {
  state: WebhookState;
  attempts: number;
  lastStatusCode?: number;
  lastError?: string;
  lastAttemptAt?: string;
  /** When the next attempt is due, while one is scheduled. */
  nextAttemptAt?: string;
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
  /** WebP thumbnail of the original, for the review page; absent when it could not be made. */
  originalThumbKey?: string;
  /** WebP thumbnail of the cutout; absent when it could not be made (or the job failed). */
  resultThumbKey?: string;
  error?: JobError;
  /** Why a queued job is waiting, e.g. `upstream_rate_limited`; absent once it runs. */
  waitingReason?: WaitingReason;
  metadata?: Record<string, unknown>;
  options?: Record<string, string>;
  webhookUrl?: string;
  webhook?: WebhookDelivery;
  /** The batch this job is an item of. */
  batchId?: string;
  /** The client's name for a batch item (a SKU, a file name), echoed in the batch manifest. */
  clientRef?: string;
  /** A batch item given by URL: the worker fetches it into `originalKey` before processing. */
  sourceUrl?: string;
  /** A batch item the client uploaded straight to S3 (POST /v1/uploads): the worker checks it into `originalKey`. */
  uploadKey?: string;
  /** A reviewer's verdict on the result, set from the review page or the API. */
  review?: ReviewVerdict;
  /** The job whose original this job processes again (`POST /v1/jobs/:id/rerun`). */
  rerunOf?: string;
  /** What to make from the cutout besides it, resolved (presets applied) when the job was accepted. */
  renditionPlans?: RenditionPlan[];
  /** Each planned rendition once the job succeeded, by name: stored, or why it could not be made. */
  renditions?: Record<string, StoredRendition>;
  /** The cutout's automatic checks, set when it succeeded. */
  quality?: QualityReport;
  /** 1 when `quality` has flags: the batch counts and lists the item (TRANSITION). */
  qualityFlagged?: number;
}

export type StoredRendition =
  | { key: string; contentType: string; width: number; height: number; bytes: number; upscaled: boolean }
  | { error: string };

export interface ReviewVerdict {
  verdict: 'rejected';
  note?: string;
  reviewedAt: string;
}

/** A record as `transition` returns it: `batchCompleted` when this transition ended the last item of its batch. */
type TransitionedJob = JobRecord & { batchCompleted?: boolean };

/** Fields stored as JSON; the rest are strings or numbers. */
const JSON_FIELDS = new Set([
  'error',
  'metadata',
  'options',
  'webhook',
  'review',
  'renditionPlans',
  'renditions',
  'quality',
]);
const NUMBER_FIELDS = new Set([
  'attempts',
  'upstreamCalls',
  'originalBytes',
  'resultBytes',
  'creditsSaved',
  'qualityFlagged',
]);

/** What a write changes: `waitingReason: null` clears the reason (the job runs, ends or just waits its turn). */
export type JobChanges = Partial<Omit<JobRecord, 'waitingReason'>> & { waitingReason?: WaitingReason | null };

export function encodeJob(fields: JobChanges): string[] {
  const flat: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (value === null) {
      flat.push(name, ''); // cleared: decodeJob reads an empty field as absent
      continue;
    }
    flat.push(name, JSON_FIELDS.has(name) ? JSON.stringify(value) : String(value));
  }
  return flat;
}

/**
 * Fields a batch item takes from its batch when it has none of its own: batch-wide settings
 * are written once on the batch, not on each of its (up to MAX_BATCH_ITEMS) items, and may
 * arrive after the items they apply to (a JSON body's fields after its items array).
 */
const BATCH_SETTINGS_PREFIX = '__batch:';

/**
 * Lua: appends the batch's settings (`options`, `renditionPlans`, and `webhookUrl` when the
 * batch sends item events) to a record read with HGETALL, as `__batch:<field>` pairs that
 * `decodeJob` applies where the record has none. The batch key is `batchPrefix .. batchId`,
 * under the job key's prefix, so it shares its Cluster hash tag and slot.
 */
export const WITH_BATCH_SETTINGS = `
local function withBatchSettings(record, jobKey, batchPrefix)
  local batchId = redis.call('HGET', jobKey, 'batchId')
  if not batchId or batchId == '' then return record end
  local s = redis.call('HMGET', batchPrefix .. batchId, 'options', 'renditionPlans', 'webhookUrl', 'itemEvents')
  if s[1] then table.insert(record, '${BATCH_SETTINGS_PREFIX}options') table.insert(record, s[1]) end
  if s[2] then table.insert(record, '${BATCH_SETTINGS_PREFIX}renditionPlans') table.insert(record, s[2]) end
  if s[3] and s[4] == '1' then table.insert(record, '${BATCH_SETTINGS_PREFIX}webhookUrl') table.insert(record, s[3]) end
  return record
end
`;

/** What a record leaves out when it holds the default (batch items are written without them). */
function withDefaults(record: Record<string, unknown>): Record<string, unknown> {
  record.attempts ??= 0;
  record.upstreamCalls ??= 0;
  record.originalBytes ??= 0;
  record.originalContentType ??= '';
  record.originalKey ??= originalKey(String(record.tenantId), String(record.id));
  return record;
}

const isWaitingReason = (value: string): value is WaitingReason =>
  (WAITING_REASONS as readonly string[]).includes(value);

function decodeJob(hash: Record<string, string>): JobRecord | null {
  if (!hash.id) return null;
  const record: Record<string, unknown> = {};
  const inherited: [string, string][] = [];
  for (const [name, value] of Object.entries(hash)) {
    if (value === '') continue; // a cleared field
    if (name.startsWith(BATCH_SETTINGS_PREFIX)) {
      inherited.push([name.slice(BATCH_SETTINGS_PREFIX.length), value]);
      continue;
    }
    if (name === 'waitingReason' && !isWaitingReason(value)) continue; // written by an older version
    record[name] = JSON_FIELDS.has(name) ? JSON.parse(value) : NUMBER_FIELDS.has(name) ? Number(value) : value;
  }
  for (const [name, value] of inherited) record[name] ??= JSON_FIELDS.has(name) ? JSON.parse(value) : value;
  return withDefaults(record) as unknown as JobRecord;
}

/** A record as a script returned it (HGETALL's flat list), decoded. */
export function decodeFlatJob(flat: string[]): JobRecord | null {
  const hash: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
  return decodeJob(hash);
}

const GET_JOB = `${WITH_BATCH_SETTINGS}
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return record end
return withBatchSettings(record, KEYS[1], ARGV[1])
`;

/**
 * Sets fields only when the job's current status is one of ARGV[1] (comma-separated);
 * increments the numeric fields named in ARGV[3] (comma-separated, by 1); sets a TTL of
 * ARGV[2] ms when it is above 0 — a job that ended — and then announces the id on the
 * KEYS[2] channel for clients waiting with `Prefer: wait`. Returns the record, or nil.
 *
 * A batch item also moves its batch's counters here, in the same script, so they stay
 * exact without ever scanning jobs: one out of the old status, one into the new, upstream
 * calls, credits saved, and `ended`. The transition that makes `ended` reach `total`
 * completes the batch (ARGV[5] is the time) and says so by appending `__batchCompleted`.
 * Each ended item is also appended to the batch's list for its final status, so a page of
 * a batch's failed (or succeeded) items is one LRANGE however large the batch; a succeeded
 * item whose cutout has quality flags is counted and listed the same way.
 * The batch key is ARGV[4] .. batchId: it shares the job key's prefix, hence its Cluster
 * hash tag and slot.
 */
const TRANSITION = `${WITH_BATCH_SETTINGS}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return nil end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == status then allowed = true end end
if not allowed then return nil end
if #ARGV > 6 then redis.call('HSET', KEYS[1], unpack(ARGV, 7)) end
local calls = 0
for f in string.gmatch(ARGV[3], '[^,]+') do
  redis.call('HINCRBY', KEYS[1], f, 1)
  if f == 'upstreamCalls' then calls = calls + 1 end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PUBLISH', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
end
local record = withBatchSettings(redis.call('HGETALL', KEYS[1]), KEYS[1], ARGV[4])
local batchId = redis.call('HGET', KEYS[1], 'batchId')
if not batchId or batchId == '' then return record end
local batchKey = ARGV[4] .. batchId
if redis.call('EXISTS', batchKey) == 0 then return record end
if calls > 0 then redis.call('HINCRBY', batchKey, 'upstreamCalls', calls) end
local now = redis.call('HGET', KEYS[1], 'status')
if now == status then return record end
redis.call('HINCRBY', batchKey, status, -1)
redis.call('HINCRBY', batchKey, now, 1)
if now ~= 'succeeded' and now ~= 'failed' and now ~= 'canceled' then return record end
if redis.call('HGET', KEYS[1], 'creditsSaved') == '1' then redis.call('HINCRBY', batchKey, 'creditsSaved', 1) end
if now == 'succeeded' and redis.call('HGET', KEYS[1], 'qualityFlagged') == '1' then
  redis.call('HINCRBY', batchKey, 'qualityFlagged', 1)
  redis.call('RPUSH', batchKey .. ':quality:flagged', redis.call('HGET', KEYS[1], 'id'))
end
local clock = redis.call('TIME')
redis.call('LPUSH', batchKey .. ':recent', clock[1] * 1000 + math.floor(clock[2] / 1000))
redis.call('LTRIM', batchKey .. ':recent', 0, 99)
redis.call('RPUSH', batchKey .. ':ended:' .. now, redis.call('HGET', KEYS[1], 'id'))
local ended = redis.call('HINCRBY', batchKey, 'ended', 1)
if ended ~= tonumber(redis.call('HGET', batchKey, 'total')) then return record end
-- A batch still being written has more items to come; its commit completes it if need be.
if redis.call('HGET', batchKey, 'status') == 'creating' then return record end
redis.call('HSET', batchKey, 'completedAt', ARGV[5])
if redis.call('HGET', batchKey, 'status') == 'processing' then redis.call('HSET', batchKey, 'status', 'completed') end
for _, suffix in ipairs({'', ':recent', ':items', ':ended:succeeded', ':ended:failed', ':ended:canceled', ':review:rejected', ':quality:flagged'}) do
  redis.call('PEXPIRE', batchKey .. suffix, ARGV[6])
end
table.insert(record, '__batchCompleted')
table.insert(record, '1')
return record
`;

export interface JobStore {
  create(record: JobRecord): Promise<void>;
  get(id: string): Promise<JobRecord | null>;
  /** Deletes a record that never became visible (its enqueue failed). */
  remove(record: Pick<JobRecord, 'id' | 'tenantId'>): Promise<void>;
  /** Applies `fields` only when the job is in one of `from`; returns the updated record or null. */
  transition(
    id: string,
    from: readonly JobStatus[],
    fields: JobChanges,
    increment?: ('attempts' | 'upstreamCalls')[],
  ): Promise<TransitionedJob | null>;
  setWebhook(id: string, delivery: WebhookDelivery): Promise<void>;
  /** Ids of a tenant's jobs, newest first, after the `before` position (exclusive). */
  listIds(tenantId: string, count: number, before?: ListPosition): Promise<(ListPosition & { id: string })[]>;
  /** Drops index entries whose records have expired. */
  forget(tenantId: string, ids: readonly string[]): Promise<void>;
  /** The pub/sub channel on which ended jobs' ids are announced. */
  readonly endedChannel: string;
}

/** Where a page of a tenant's jobs ends: creation time in ms, and the id for ties. */
export interface ListPosition {
  createdMs: number;
  id: string;
}

/** Where a job record and a tenant's job index live; the batch store writes items there in bulk. */
export const jobRecordKey = (prefix: string, id: string): string => `${prefix}:job:${id}`;
export const tenantJobIndexKey = (prefix: string, tenantId: string): string => `${prefix}:tenant:${tenantId}:jobs`;

export function makeJobStore({
  redis,
  prefix,
  retentionMs,
}: {
  redis: Redis;
  prefix: string;
  retentionMs: number;
}): JobStore {
  const jobKey = (id: string) => jobRecordKey(prefix, id);
  const tenantIndex = (tenantId: string) => tenantJobIndexKey(prefix, tenantId);
  const endedChannel = `${prefix}:jobs:ended`;
  const batchPrefix = `${prefix}:batch:`;

  return {
    async create(record) {
      await redis
        .multi()
        .hset(jobKey(record.id), ...encodeJob(record))
        .zadd(tenantIndex(record.tenantId), Date.parse(record.createdAt), record.id)
        // Index entries far older than any record can live are dropped as new jobs arrive.
        .zremrangebyscore(tenantIndex(record.tenantId), '-inf', Date.parse(record.createdAt) - 2 * retentionMs)
        .exec();
    },
    async remove({ id, tenantId }) {
      await redis.multi().del(jobKey(id)).zrem(tenantIndex(tenantId), id).exec();
    },
    async get(id) {
      return decodeFlatJob((await runScript(redis, GET_JOB, 1, jobKey(id), batchPrefix)) as string[]);
    },
    async transition(id, from, fields, increment = []) {
      const ttl = fields.status && isTerminal(fields.status) ? retentionMs : 0;
      const flat = (await runScript(
        redis,
        TRANSITION,
        2,
        jobKey(id),
        endedChannel,
        from.join(','),
        String(ttl),
        increment.join(','),
        batchPrefix,
        new Date().toISOString(),
        String(retentionMs),
        ...encodeJob(fields),
      )) as string[] | null;
      if (!flat) return null;
      const hash: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
      const batchCompleted = hash.__batchCompleted === '1';
      delete hash.__batchCompleted;
      const record: TransitionedJob | null = decodeJob(hash);
      if (record && batchCompleted) record.batchCompleted = true;
      return record;
    },
    async setWebhook(id, delivery) {
      // Only an existing record is updated, so an expired job is not recreated as a stub.
      await runScript(
        redis,
        `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'webhook', ARGV[1]) end`,
        1,
        jobKey(id),
        JSON.stringify(delivery),
      );
    },
    async listIds(tenantId, count, before) {
      // Newest first; equal timestamps are ordered by id (Redis orders equal scores by member).
      const max = before ? String(before.createdMs) : '+inf';
      const flat = await redis.zrevrangebyscore(
        tenantIndex(tenantId),
        max,
        '-inf',
        'WITHSCORES',
        'LIMIT',
        0,
        count + 100,
      );
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
