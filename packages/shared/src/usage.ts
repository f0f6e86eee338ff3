import type { Redis } from './redis.ts';

export type UsageField = 'jobs' | 'upstream_calls' | 'credits_saved';

export interface UsageDay { date: string; jobs: number; upstream_calls: number; credits_saved: number }

/** Per tenant and UTC day, kept for 35 days: what GET /v1/account shows as usage. */
export interface Usage {
  add(tenantId: string, field: UsageField, by?: number): Promise<void>;
  day(tenantId: string, date?: string): Promise<UsageDay>;
}

const KEEP_MS = 35 * 86_400_000;
const today = () => new Date().toISOString().slice(0, 10);

export function makeUsage({ redis, prefix }: { redis: Redis; prefix: string }): Usage {
  const key = (tenantId: string, date: string) => `${prefix}:usage:${tenantId}:${date}`;
  return {
    async add(tenantId, field, by = 1) {
      const usageKey = key(tenantId, today());
      await redis.multi().hincrby(usageKey, field, by).pexpire(usageKey, KEEP_MS).exec();
    },
    async day(tenantId, date = today()) {
      const [jobs, upstreamCalls, creditsSaved] = await redis.hmget(key(tenantId, date), 'jobs', 'upstream_calls', 'credits_saved');
      return { date, jobs: Number(jobs ?? 0), upstream_calls: Number(upstreamCalls ?? 0), credits_saved: Number(creditsSaved ?? 0) };
    },
  };
}
