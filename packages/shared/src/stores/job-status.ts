import type { Redis } from 'ioredis';
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

/** What a status poll shows: the record, and for a queued job why its whole queue waits. */
interface JobStatusRead {
  record: JobRecord | null;
  hold: WaitingReason | null;
}

export interface JobStatusReader {
  /** The record and, when it is queued, the caller's queue hold, in one command: every poll makes it. */
  read(id: string, tenantId: string, now?: number): Promise<JobStatusRead>;
}

/**
 * KEYS: the job, the hold keys (ARGV[2] of them, in HOLD_REASONS order), the pause, the
 * caller's three budget keys. ARGV[1]: the batch key prefix. Returns the record (HGETALL's
 * list, with its batch's settings) and, only for a queued job, each hold (`''` when none),
 * the pause's PTTL and the budget's room.
 */
const READ = `${WITH_BATCH_SETTINGS}${BUDGET_ROOM_LUA}
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return {record} end
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then return {withBatchSettings(record, KEYS[1], ARGV[1])} end
local n = tonumber(ARGV[2])
local reply = {withBatchSettings(record, KEYS[1], ARGV[1])}
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
    async read(id, tenantId, now = Date.now()) {
      const keys = [
        jobRecordKey(prefix, id),
        ...holdKeys,
        upstream.rateLimitPause,
        ...budgetRoomKeys(prefix, tenantId, now),
      ];
      const [flat, ...rest] = (await runScript(
        redis,
        READ,
        keys.length,
        ...keys,
        batchPrefix,
        String(holdKeys.length),
      )) as [string[], ...(string | number)[]];
      const record = decodeFlatJob(flat);
      if (record?.status !== 'queued' || rest.length === 0) return { record, hold: null };
      const holds: Holds = {};
      HOLD_REASONS.forEach((reason, i) => {
        const stored = rest[i];
        if (typeof stored === 'string' && stored !== '') holds[reason] = JSON.parse(stored) as HoldProblem;
      });
      const pauseMs = Math.max(0, Number(rest[HOLD_REASONS.length]));
      const room = Number(rest[HOLD_REASONS.length + 1]);
      return { record, hold: holdReasonOf(holds, room < 0 ? Infinity : room, pauseMs) };
    },
  };
}
