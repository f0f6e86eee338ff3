import type { Redis } from '../infra/redis.ts';

/**
 * `upstream_calls` is counted by the budget (budgets.ts) as each call is reserved, so the
 * usage, the budget and the history agree; the other fields are counted here.
 */
type UsageField = 'jobs' | 'credits_saved' | 'jobs_succeeded' | 'jobs_failed';

export interface UsageDay {
  date: string;
  jobs: number;
  jobs_succeeded: number;
  jobs_failed: number;
  upstream_calls: number;
  credits_saved: number;
}

/** Per tenant and UTC day, kept for 35 days: what GET /v1/account and /v1/account/usage show. */
export interface Usage {
  add(tenantId: string, field: UsageField, by?: number): Promise<void>;
  day(tenantId: string, date?: string): Promise<UsageDay>;
  /** Every day from `from` to `to` (YYYY-MM-DD, inclusive), oldest first, in one round trip. */
  days(tenantId: string, from: string, to: string): Promise<UsageDay[]>;
}

export const USAGE_KEEP_DAYS = 35;
export const USAGE_KEEP_MS = USAGE_KEEP_DAYS * 86_400_000;
const FIELDS = ['jobs', 'jobs_succeeded', 'jobs_failed', 'upstream_calls', 'credits_saved'] as const;
const today = () => new Date().toISOString().slice(0, 10);

export const usageKey = (prefix: string, tenantId: string, date: string): string =>
  `${prefix}:usage:${tenantId}:${date}`;

/** The dates from `from` to `to`, inclusive. */
export function datesBetween(from: string, to: string): string[] {
  const dates: string[] = [];
  for (let at = Date.parse(`${from}T00:00:00Z`); at <= Date.parse(`${to}T00:00:00Z`); at += 86_400_000)
    dates.push(new Date(at).toISOString().slice(0, 10));
  return dates;
}

const toDay = (date: string, values: (string | null)[]): UsageDay =>
  ({ date, ...Object.fromEntries(FIELDS.map((field, i) => [field, Number(values[i] ?? 0)])) }) as UsageDay;

export function makeUsage({ redis, prefix }: { redis: Redis; prefix: string }): Usage {
  const key = (tenantId: string, date: string) => usageKey(prefix, tenantId, date);
  return {
    async add(tenantId, field, by = 1) {
      const dayKey = key(tenantId, today());
      await redis.multi().hincrby(dayKey, field, by).pexpire(dayKey, USAGE_KEEP_MS).exec();
    },
    async day(tenantId, date = today()) {
      return toDay(date, await redis.hmget(key(tenantId, date), ...FIELDS));
    },
    async days(tenantId, from, to) {
      const dates = datesBetween(from, to);
      const tx = redis.multi();
      for (const date of dates) tx.hmget(key(tenantId, date), ...FIELDS);
      const replies = (await tx.exec()) ?? [];
      return dates.map((date, i) => toDay(date, (replies[i]?.[1] as (string | null)[] | undefined) ?? []));
    },
  };
}
