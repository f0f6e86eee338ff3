import { setTimeout as sleep } from 'node:timers/promises';
import type { StatsSnapshot } from '../../apps/emulator/src/stats.ts';

export interface MeterPoint {
  at: number;
  ok: number;
  rateLimited: number;
  total: number;
}

export interface UpstreamReading {
  /** Successful calls per second between 10 % and 90 % of the expected successes (the steady part). */
  steadyOkPerSecond: number;
  /** 429s as a share of every upstream call, over the whole run (ramp-up included). */
  rateLimitedShare: number;
  rateLimited: number;
  total: number;
  ok: number;
  seconds: number;
}

/** Samples the emulator's counters every `intervalMs` until `done()` or the deadline. */
export async function meterUpstream(
  stats: () => Promise<StatsSnapshot>,
  {
    expectedOk,
    timeoutMs,
    intervalMs = 250,
    done,
  }: {
    expectedOk: number;
    timeoutMs: number;
    intervalMs?: number;
    done: () => boolean;
  },
): Promise<{ points: MeterPoint[]; timedOut: boolean }> {
  const points: MeterPoint[] = [];
  const started = performance.now();
  for (;;) {
    const snapshot = await stats();
    const point = {
      at: performance.now(),
      ok: snapshot.byStatus['200'] ?? 0,
      rateLimited: snapshot.byStatus['429'] ?? 0,
      total: snapshot.total,
    };
    points.push(point);
    if (done() || point.ok >= expectedOk) return { points, timedOut: false };
    if (performance.now() - started > timeoutMs) return { points, timedOut: true };
    await sleep(intervalMs);
  }
}

export function readUpstream(points: MeterPoint[], expectedOk: number): UpstreamReading {
  const last = points.at(-1)!;
  // From the first call: process start-up before it is not the upstream's doing.
  const first = points.find((point) => point.total > 0) ?? points[0]!;
  const from = points.find((point) => point.ok >= expectedOk * 0.1) ?? first;
  const to = points.find((point) => point.ok >= expectedOk * 0.9) ?? last;
  const steadySeconds = (to.at - from.at) / 1000;
  return {
    steadyOkPerSecond: steadySeconds > 0 ? (to.ok - from.ok) / steadySeconds : Number.NaN,
    rateLimitedShare: last.total > 0 ? last.rateLimited / last.total : 0,
    rateLimited: last.rateLimited,
    total: last.total,
    ok: last.ok,
    seconds: (last.at - first.at) / 1000,
  };
}
