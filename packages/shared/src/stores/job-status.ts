import type { Redis } from 'ioredis';
import { COUNT_ALLOWANCE_LUA, type AllowanceCount, type AllowanceTerms } from './allowance.ts';
import { BUDGET_ROOM_LUA, budgetRoomKeys } from './budgets.ts';
import type { WaitingReason } from '../views/job-codes.ts';
import { decodeFlatJob, jobRecordKey, WITH_BATCH_SETTINGS, type JobRecord } from './job-store.ts';
import { runScript } from '../infra/scripts.ts';
import { HOLD_REASONS, upstreamKeys, type Holds, type HoldProblem } from './upstream-state.ts';

/**
 * Why every queued job of a tenant waits right now: the workers hold the whole queue (every
 * key refused, no credit), the tenant's budget of upstream calls is used up, or a 429 paused
 * the queue. `room` is the calls left (Infinity without a budget), `pauseMs` the pause left.
 */
export function holdReasonOf(holds: Holds, room: number, pauseMs: number): WaitingReason | null {
  const held = HOLD_REASONS.find((reason) => holds[reason]);
  if (held) return held;
  if (room <= 0) return 'budget_exhausted';
  if (pauseMs > 0) return 'upstream_rate_limited';
  return null;
}

/**
 * What a status poll shows: the record, and for a queued job why its whole queue waits;
 * with `allowance`, what counting the caller gave (the record is then null when it was over).
 */
interface JobStatusRead {
  record: JobRecord | null;
  hold: WaitingReason | null;
  counted?: AllowanceCount;
}

export interface JobStatusReader {
  /**
   * The record and, when it is queued, the caller's queue hold, in one command: every poll
   * makes it. With `allowance`, the same command first counts the caller's request, and
   * reads nothing when it is over the allowance.
   */
  read(id: string, tenantId: string, options?: { allowance?: AllowanceTerms; now?: number }): Promise<JobStatusRead>;
}

/**
 * KEYS: the job, the hold keys (ARGV[2] of them, in HOLD_REASONS order), the pause, the
 * caller's three budget keys, and the allowance's key when ARGV[3] (its max) is not empty.
 * ARGV[1]: the batch key prefix; ARGV[4]: the allowance's window. Returns the allowance's
 * count and window left (-1, -1 when not counted), then, unless the count is over, the record
 * (HGETALL's list, with its batch's settings, as one JSON array: decoding one string is far
 * cheaper for the client than fifty; `''` when there is none) and, only for a queued job,
 * each hold (`''` when none), the pause's PTTL and the budget's room.
 */
const READ = `${WITH_BATCH_SETTINGS}${BUDGET_ROOM_LUA}${COUNT_ALLOWANCE_LUA}
local n = tonumber(ARGV[2])
local current, ttl = -1, -1
if ARGV[3] ~= '' then
  current, ttl = countAllowance(KEYS[6 + n], ARGV[4])
  if current > tonumber(ARGV[3]) then return {current, ttl} end
end
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return {current, ttl, ''} end
local encoded = cjson.encode(withBatchSettings(record, KEYS[1], ARGV[1]))
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return {current, ttl, encoded} end
local reply = {current, ttl, encoded}
for i = 1, n do table.insert(reply, redis.call('GET', KEYS[1 + i]) or '') end
table.insert(reply, redis.call('PTTL', KEYS[2 + n]))
table.insert(reply, budgetRoom(KEYS[3 + n], KEYS[4 + n], KEYS[5 + n]))
return reply
`;

export function makeJobStatusReader({ redis, prefix }: { redis: Redis; prefix: string }): JobStatusReader {
  const upstream = upstreamKeys(prefix);
  const holdKeys = HOLD_REASONS.map((reason) => upstream.holds[reason]);
  const batchPrefix = `${prefix}:batch:`;
  return {
    async read(id, tenantId, { allowance, now = Date.now() } = {}) {
      const keys = [
        jobRecordKey(prefix, id),
        ...holdKeys,
        upstream.rateLimitPause,
        ...budgetRoomKeys(prefix, tenantId, now),
        ...(allowance ? [allowance.key] : []),
      ];
      const [current, ttlMs, encoded, ...rest] = (await runScript(
        redis,
        READ,
        keys.length,
        ...keys,
        batchPrefix,
        String(holdKeys.length),
        allowance ? String(allowance.max) : '',
        allowance ? String(allowance.windowMs) : '',
      )) as [number, number, string | undefined, ...(string | number)[]];
      const counted = allowance ? { current, ttlMs } : undefined;
      const record = encoded ? decodeFlatJob(JSON.parse(encoded) as string[]) : null;
      if (record?.status !== 'queued' || rest.length === 0) return { record, hold: null, counted };
      const holds: Holds = {};
      HOLD_REASONS.forEach((reason, i) => {
        const stored = rest[i];
        if (typeof stored === 'string' && stored !== '') holds[reason] = JSON.parse(stored) as HoldProblem;
      });
      const pauseMs = Math.max(0, Number(rest[HOLD_REASONS.length]));
      const room = Number(rest[HOLD_REASONS.length + 1]);
      return { record, hold: holdReasonOf(holds, room < 0 ? Infinity : room, pauseMs), counted };
    },
  };
}
