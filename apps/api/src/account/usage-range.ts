import { z } from 'zod';
import { USAGE_KEEP_DAYS, datesBetween, type UsageDay } from '@cutout/shared/stores';
import { ApiError } from '../http/errors.ts';

const DAY_MS = 86_400_000;
/** Without `from`: the 30 days up to `to`. */
const DEFAULT_DAYS = 30;

/** A real calendar day: 2026-02-30 is refused, not rolled over to March. */
const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/)
  .refine((text) => {
    const at = Date.parse(`${text}T00:00:00Z`);
    return !Number.isNaN(at) && new Date(at).toISOString().startsWith(text);
  });

const invalid = (message: string) => new ApiError('invalid_request', message);
const dateOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

function parseDate(name: 'from' | 'to', value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const parsed = isoDate.safeParse(value);
  if (!parsed.success) throw invalid(`${name} must be a UTC date as YYYY-MM-DD, e.g. 2026-11-01`);
  return parsed.data;
}

/** The range asked for, checked against what is kept: today and the 34 days before it. */
export function usageRange(
  { from: rawFrom, to: rawTo }: { from?: unknown; to?: unknown },
  now = Date.now(),
): { from: string; to: string } {
  const today = dateOf(now);
  const earliest = dateOf(Date.parse(`${today}T00:00:00Z`) - (USAGE_KEEP_DAYS - 1) * DAY_MS);
  const to = parseDate('to', rawTo) ?? today;
  const from =
    parseDate('from', rawFrom) ??
    [dateOf(Date.parse(`${to}T00:00:00Z`) - (DEFAULT_DAYS - 1) * DAY_MS), earliest].sort().at(-1)!;
  if (to > today) throw invalid(`to must not be after today (${today}, UTC)`);
  if (from > to) throw invalid(`from (${from}) is after to (${to})`);
  const days = datesBetween(from, to).length;
  if (days > USAGE_KEEP_DAYS)
    throw invalid(`A range covers at most ${USAGE_KEEP_DAYS} days; ${from} to ${to} is ${days}`);
  if (from < earliest) throw invalid(`Usage is kept for ${USAGE_KEEP_DAYS} days: from must be ${earliest} or later`);
  return { from, to };
}

/** The days' usage, and its totals. */
export const usageTotals = (days: UsageDay[]) => {
  const sum = (field: Exclude<keyof UsageDay, 'date'>) => days.reduce((total, day) => total + day[field], 0);
  return {
    jobs: sum('jobs'),
    jobs_succeeded: sum('jobs_succeeded'),
    jobs_failed: sum('jobs_failed'),
    upstream_calls: sum('upstream_calls'),
    credits_saved: sum('credits_saved'),
  };
};
