import { runScript } from '../infra/scripts.ts';
import type { Redis } from 'ioredis';
import { USAGE_KEEP_MS, usageKey } from './usage.ts';

/**
 * Per-tenant budgets of ByByBG calls, per UTC day and per UTC month. Every call a job makes
 * is counted here before it is sent (`reserve`), in one Lua script that checks the limits and
 * counts in the same step, so any number of workers together never exceed a budget. The day's
 * count is the usage record's `upstream_calls` (usage.ts): one number for the budget, the
 * account's usage and its history. A call that never left is given back (`refund`).
 */
export type BudgetPeriodName = 'daily' | 'monthly';
const BUDGET_PERIODS: readonly BudgetPeriodName[] = ['daily', 'monthly'];

export interface BudgetLimits {
  daily: number | null;
  monthly: number | null;
}

export interface BudgetPeriod {
  limit: number;
  used: number;
  resetsAt: string;
}
/** A period without a limit is null. */
type BudgetState = Record<BudgetPeriodName, BudgetPeriod | null>;

/** Where a reserved call was counted, so a refund takes it back from the same day and month. */
export interface CallReservation {
  tenantId: string;
  day: string;
  month: string;
}

export type Reservation =
  | { ok: true; reservation: CallReservation }
  /** `resetsAt` (ms): when every exhausted period has rolled over. */
  | { ok: false; exhausted: BudgetPeriodName[]; resetsAt: number };

export interface Budgets {
  limits(tenantId: string): Promise<BudgetLimits>;
  /** Sets the periods given (null removes one); the others stay. Returns the limits now in force. */
  setLimits(tenantId: string, limits: Partial<BudgetLimits>): Promise<BudgetLimits>;
  clear(tenantId: string): Promise<void>;
  state(tenantId: string, now?: number): Promise<BudgetState>;
  /** Calls the tenant may still make now; Infinity without a budget. */
  room(tenantId: string, now?: number): Promise<number>;
  /** Counts one call, unless a budget is reached. */
  reserve(tenantId: string, now?: number): Promise<Reservation>;
  refund(reservation: CallReservation): Promise<void>;
}

interface BudgetPeriods {
  day: string;
  month: string;
  dayStarts: number;
  dayEnds: number;
  monthEnds: number;
}

/** The periods of the day last asked for: every status poll asks, nearly always within the same day. */
let lastPeriods: BudgetPeriods | undefined;

/** The UTC day and month of `now`, and when each ends. */
export function budgetPeriods(now: number): Readonly<BudgetPeriods> {
  if (lastPeriods && now >= lastPeriods.dayStarts && now < lastPeriods.dayEnds) return lastPeriods;
  const date = new Date(now);
  const [y, m, d] = [date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()];
  const iso = date.toISOString();
  lastPeriods = {
    day: iso.slice(0, 10),
    month: iso.slice(0, 7),
    dayStarts: Date.UTC(y, m, d),
    dayEnds: Date.UTC(y, m, d + 1),
    monthEnds: Date.UTC(y, m + 1, 1),
  };
  return lastPeriods;
}

/** A month counter outlives its month, so a late refund still finds it. */
const MONTH_KEEP_MS = 62 * 86_400_000;

/**
 * KEYS: limits hash, the day's usage hash, the month's counter hash. ARGV: their TTLs.
 * Returns the exhausted periods (nothing counted), or an empty list (the call is counted).
 */
const RESERVE = `
local limits = redis.call('HMGET', KEYS[1], 'daily', 'monthly')
local used = {
  tonumber(redis.call('HGET', KEYS[2], 'upstream_calls') or '0'),
  tonumber(redis.call('HGET', KEYS[3], 'upstream_calls') or '0'),
}
local exhausted = {}
if limits[1] and used[1] >= tonumber(limits[1]) then table.insert(exhausted, 'daily') end
if limits[2] and used[2] >= tonumber(limits[2]) then table.insert(exhausted, 'monthly') end
if #exhausted > 0 then return exhausted end
redis.call('HINCRBY', KEYS[2], 'upstream_calls', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'upstream_calls', 1)
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return exhausted
`;

/**
 * Lua: `budgetRoom(limits, day, month)` is the calls left now (-1: no budget). Also part of
 * the status read of a queued job (job-status.ts), which every poll makes.
 */
export const BUDGET_ROOM_LUA = `
local function budgetRoom(limitsKey, dayKey, monthKey)
  local limits = redis.call('HMGET', limitsKey, 'daily', 'monthly')
  local room = -1
  if limits[1] then room = math.max(0, tonumber(limits[1]) - tonumber(redis.call('HGET', dayKey, 'upstream_calls') or '0')) end
  if limits[2] then
    local month = math.max(0, tonumber(limits[2]) - tonumber(redis.call('HGET', monthKey, 'upstream_calls') or '0'))
    if room < 0 or month < room then room = month end
  end
  return room
end
`;

/** Calls left now (-1: no budget), in one command. */
const ROOM = `${BUDGET_ROOM_LUA}
return budgetRoom(KEYS[1], KEYS[2], KEYS[3])
`;

/** Takes a call back, never below 0, and only from counters that still exist. */
const REFUND = `
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('HGET', key, 'upstream_calls') or '0') > 0 then redis.call('HINCRBY', key, 'upstream_calls', -1) end
end
`;

const toLimit = (value: string | null | undefined): number | null =>
  value === null || value === undefined || value === '' ? null : Number(value);

/** The keys `budgetRoom` reads for a tenant at `now`: its limits, the day's usage, the month's counter. */
export function budgetRoomKeys(prefix: string, tenantId: string, now: number): [string, string, string] {
  const periods = budgetPeriods(now);
  return [
    `${prefix}:budget:${tenantId}`,
    usageKey(prefix, tenantId, periods.day),
    `${prefix}:usage-month:${tenantId}:${periods.month}`,
  ];
}

export function makeBudgets({ redis, prefix }: { redis: Redis; prefix: string }): Budgets {
  const limitsKey = (tenantId: string) => `${prefix}:budget:${tenantId}`;
  const monthKey = (tenantId: string, month: string) => `${prefix}:usage-month:${tenantId}:${month}`;

  async function limits(tenantId: string): Promise<BudgetLimits> {
    const [daily, monthly] = await redis.hmget(limitsKey(tenantId), 'daily', 'monthly');
    return { daily: toLimit(daily), monthly: toLimit(monthly) };
  }

  async function state(tenantId: string, now = Date.now()): Promise<BudgetState> {
    const periods = budgetPeriods(now);
    const [set, day, month] = await Promise.all([
      limits(tenantId),
      redis.hget(usageKey(prefix, tenantId, periods.day), 'upstream_calls'),
      redis.hget(monthKey(tenantId, periods.month), 'upstream_calls'),
    ]);
    const period = (limit: number | null, used: string | null, endsAt: number): BudgetPeriod | null =>
      limit === null ? null : { limit, used: Number(used ?? 0), resetsAt: new Date(endsAt).toISOString() };
    return { daily: period(set.daily, day, periods.dayEnds), monthly: period(set.monthly, month, periods.monthEnds) };
  }

  return {
    limits,
    async setLimits(tenantId, changes) {
      const key = limitsKey(tenantId);
      const tx = redis.multi();
      for (const name of BUDGET_PERIODS) {
        const value = changes[name];
        if (value === null) tx.hdel(key, name);
        else if (value !== undefined) tx.hset(key, name, String(value));
      }
      await tx.exec();
      return limits(tenantId);
    },
    async clear(tenantId) {
      await redis.del(limitsKey(tenantId));
    },
    state,
    async room(tenantId, now = Date.now()) {
      const room = Number(await runScript(redis, ROOM, 3, ...budgetRoomKeys(prefix, tenantId, now)));
      return room < 0 ? Infinity : room;
    },
    async reserve(tenantId, now = Date.now()) {
      const periods = budgetPeriods(now);
      const exhausted = (await runScript(
        redis,
        RESERVE,
        3,
        limitsKey(tenantId),
        usageKey(prefix, tenantId, periods.day),
        monthKey(tenantId, periods.month),
        String(USAGE_KEEP_MS),
        String(MONTH_KEEP_MS),
      )) as BudgetPeriodName[];
      if (exhausted.length === 0)
        return { ok: true, reservation: { tenantId, day: periods.day, month: periods.month } };
      const resetsAt = Math.max(...exhausted.map((name) => (name === 'daily' ? periods.dayEnds : periods.monthEnds)));
      return { ok: false, exhausted, resetsAt };
    },
    async refund({ tenantId, day, month }) {
      await runScript(redis, REFUND, 2, usageKey(prefix, tenantId, day), monthKey(tenantId, month));
    },
  };
}
