/**
 * Call counters for tests and benchmarks ("how many 429s did key A get?").
 *
 * Outcomes are HTTP status codes as strings ("200", "429", …) plus two labels for calls
 * that never get a normal status: "hang" (never answered) and "truncated" (200 headers,
 * body cut short).
 *
 * Keys are shown masked (first 4 + "…" + last 4, see `maskKey`) so that a stats dump pasted
 * into a log or an issue never leaks a usable key. Distinct masked keys are capped so that
 * a client spraying random keys cannot grow the map without bound.
 */

export type Outcome = `${number}` | 'hang' | 'truncated';
type OutcomeCounts = Record<string, number>;

export interface StatsSnapshot {
  total: number;
  inFlight: number;
  byStatus: OutcomeCounts;
  byKey: Record<string, OutcomeCounts>;
}

export interface Stats {
  record(key: string | undefined, outcome: Outcome): void;
  /** Marks a call as started; returns the function that marks it finished (idempotent). */
  begin(): () => void;
  snapshot(): StatsSnapshot;
  reset(): void;
}

const NO_KEY = '(none)';
const OTHER_KEYS = '(other)';
const MAX_KEYS = 1000;

/**
 * `ab12…9f3e` for keys of 12+ characters. Shorter keys would be revealed almost entirely
 * by 4 + 4 characters, so they show only their first 2 and their length.
 */
export function maskKey(key: string | undefined): string {
  if (key === undefined || key === '') return NO_KEY;
  if (key.length >= 12) return `${key.slice(0, 4)}…${key.slice(-4)}`;
  return `${key.slice(0, 2)}…(${key.length})`;
}

export function makeStats(): Stats {
  let total = 0;
  let inFlight = 0;
  let byStatus: OutcomeCounts = {};
  let byKey = new Map<string, OutcomeCounts>();

  function countsFor(masked: string): OutcomeCounts {
    const existing = byKey.get(masked);
    if (existing) return existing;
    const bucket = byKey.size < MAX_KEYS ? masked : OTHER_KEYS;
    const counts = byKey.get(bucket) ?? {};
    byKey.set(bucket, counts);
    return counts;
  }

  function record(key: string | undefined, outcome: Outcome): void {
    total += 1;
    byStatus[outcome] = (byStatus[outcome] ?? 0) + 1;
    const counts = countsFor(maskKey(key));
    counts[outcome] = (counts[outcome] ?? 0) + 1;
  }

  function begin(): () => void {
    inFlight += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      inFlight -= 1;
    };
  }

  function snapshot(): StatsSnapshot {
    const keys: Record<string, OutcomeCounts> = {};
    for (const [masked, counts] of byKey) keys[masked] = { ...counts };
    return { total, inFlight, byStatus: { ...byStatus }, byKey: keys };
  }

  // In-flight calls are still running, so a reset keeps their count.
  function reset(): void {
    total = 0;
    byStatus = {};
    byKey = new Map();
  }

  return { record, begin, snapshot, reset };
}
