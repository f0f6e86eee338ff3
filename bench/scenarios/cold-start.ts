import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { upstreamKeys } from '@cutout/shared/stores';
import { runNaiveClient } from '../baselines/naive-client.ts';
import { distinctPhotos } from '../lib/images.ts';
import { mapLimit } from '../lib/load.ts';
import { perSecond, rateChartSvg, type SecondCounts } from '../lib/rate-chart.ts';
import { jobStatuses, startBenchStack, submitJob, type BenchStack } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Sample, Scenario, ScenarioContext } from '../lib/types.ts';
import type { MeterPoint } from '../lib/upstream-meter.ts';

const L = 30;
const UPGRADED = 60;
const WINDOW_S = 30;
/** From here on the rate counts as the steady state. */
const STEADY_FROM_S = 15;
const WORKERS = 2;
/**
 * Only what ByByBG documents: a token bucket of its own with a small burst, 429 with
 * Retry-After and no X-RateLimit-* headers; tens of ms of noisy latency.
 */
const FAULTS = {
  rateLimit: { perSecond: L, burst: 5 },
  rateLimitHeaders: false,
  fixedResult: true,
  latencyMs: 40,
  latencyJitterMs: 40,
};

interface Run {
  seconds: SecondCounts[];
  failed: number;
  governor: Record<string, string>;
}

/**
 * Scenario 11: cold-start discovery. About a thousand distinct images are queued at once
 * against an upstream limited to L calls/s that Cutout was not told; the workers start
 * from nothing in Redis. Measured from the first upstream call over 30 s: the share of
 * the limit used, the share in the steady part (15–30 s), the 429 share and failed jobs;
 * beside it the same run told the limit (BYBYBG_RATE_LIMIT) and the naive client. A
 * fourth run raises the limit (a plan upgrade) mid-run and times how long until Cutout
 * uses 90 % of the new one. Draws bench/results/cold-start-discovery.svg.
 */
export function coldStartScenario(jobs: number): Scenario {
  return {
    name: 'cold-start discovery',
    async run(context) {
      const photos = await distinctPhotos(Math.max(jobs, Math.ceil(L * WINDOW_S * 1.1)));
      const told = await runCutout(context, photos, { BYBYBG_RATE_LIMIT: String(L) }, 'told the limit');
      const discovering = await runCutout(context, photos, { BYBYBG_RATE_LIMIT: '' }, 'discovering');
      const naive = await runNaive(context, photos);
      const upgrade = await runUpgrade(context);
      writeChart(context, [
        { label: `Cutout told the limit (BYBYBG_RATE_LIMIT=${L})`, color: '#1f77b4', seconds: told.seconds },
        { label: 'Cutout discovering it', color: '#2ca02c', seconds: discovering.seconds },
        { label: 'naive client (40 in flight, backoff)', color: '#d62728', seconds: naive },
      ]);
      return [
        ...samples('discovering', discovering.seconds, discovering.failed, naive),
        ...samples(`BYBYBG_RATE_LIMIT=${L}`, told.seconds, told.failed, naive),
        {
          name: '11 cold start: time to use 90 % of a raised limit (plan upgrade ×2)',
          value: round(upgrade),
          unit: 's',
          target: '≤ 60 s',
          meets: (value) => value <= 60,
        },
      ];
    },
  };
}

const share = (seconds: SecondCounts[], from: number, to: number) =>
  seconds.slice(from, to).reduce((sum, second) => sum + second.ok, 0) / (L * (to - from));
const limitedShare = (seconds: SecondCounts[]) => {
  const ok = seconds.reduce((sum, second) => sum + second.ok, 0);
  const limited = seconds.reduce((sum, second) => sum + second.rateLimited, 0);
  return limited / Math.max(1, ok + limited);
};

function samples(mode: string, seconds: SecondCounts[], failed: number, naive: SecondCounts[]): Sample[] {
  return [
    {
      name: `11 cold start, ${mode}: share of the limit used in the first 30 s`,
      value: round(share(seconds, 0, WINDOW_S) * 100, 1),
      unit: '%',
      baseline: round(share(naive, 0, WINDOW_S) * 100, 1),
      target: '≥ 90 %',
      meets: (value) => value >= 90,
    },
    {
      name: `11 cold start, ${mode}: share of the limit used in the steady state (15–30 s)`,
      value: round(share(seconds, STEADY_FROM_S, WINDOW_S) * 100, 1),
      unit: '%',
      baseline: round(share(naive, STEADY_FROM_S, WINDOW_S) * 100, 1),
      target: mode === 'discovering' ? '≥ 97 %' : '≥ 95 %',
      meets: (value) => value >= (mode === 'discovering' ? 97 : 95),
    },
    {
      name: `11 cold start, ${mode}: 429 share of upstream calls in the first 30 s`,
      value: round(limitedShare(seconds) * 100, 2),
      unit: '%',
      baseline: round(limitedShare(naive) * 100, 2),
      target: '≤ 2 %',
      meets: (value) => value <= 2,
    },
    {
      name: `11 cold start, ${mode}: failed jobs`,
      value: failed,
      unit: 'jobs',
      target: '0',
      meets: (value) => value === 0,
    },
  ];
}

async function queueAll(stack: BenchStack, photos: Buffer[]): Promise<{ api: { url: string }; ids: string[] }> {
  const api = await stack.startApi();
  const ids = await mapLimit(photos.length, 16, (index) => submitJob(api.url, stack.apiKey, photos[index]!));
  return { api, ids };
}

async function runCutout(
  context: ScenarioContext,
  photos: Buffer[],
  env: Record<string, string>,
  mode: string,
): Promise<Run> {
  const stack = await startBenchStack(FAULTS);
  try {
    const { api, ids } = await queueAll(stack, photos);
    await stack.resetEmulatorStats();
    const workers = stack.startWorkers(WORKERS, { ...env, WORKER_CONCURRENCY: '16' });
    const points = await meterWindow(stack, WINDOW_S);
    await workers;
    const seconds = perSecond(points, WINDOW_S);
    const governor = await stack.redis.hgetall(upstreamKeys(stack.prefix).governor);
    const statuses = await settledStatuses(api.url, stack, ids);
    context.log(
      `  ${mode}: ${seconds.map((second) => second.ok + (second.rateLimited ? `(${second.rateLimited}×429)` : '')).join(' ')}`,
    );
    context.log(
      `  ${mode}: governor rate ${round(Number(governor.rate))}/s, ceiling ${round(Number(governor.ceiling))}, reason "${governor.reason}"; jobs ${JSON.stringify(statuses)}`,
    );
    return { seconds, failed: statuses.failed ?? 0, governor };
  } finally {
    await stack.close();
  }
}

async function runNaive(context: ScenarioContext, photos: Buffer[]): Promise<SecondCounts[]> {
  const stack = await startBenchStack(FAULTS);
  try {
    await stack.resetEmulatorStats();
    const client = runNaiveClient({ apiUrl: stack.emulator.url, apiKey: stack.emulatorKey, photos, inFlight: 40 });
    const points = await meterWindow(stack, WINDOW_S);
    const seconds = perSecond(points, WINDOW_S);
    context.log(`  naive: ${seconds.map((second) => `${second.ok}(${second.rateLimited}×429)`).join(' ')}`);
    await client;
    return seconds;
  } finally {
    await stack.close();
  }
}

/** Discovery from a cold start; 20 s after the first call the limit doubles. Seconds until 90 % of the new one is used. */
async function runUpgrade(context: ScenarioContext): Promise<number> {
  const RAISE_AT_S = 20;
  const TIMEOUT_S = 90;
  const photos = await distinctPhotos(L * RAISE_AT_S + UPGRADED * 70);
  const stack = await startBenchStack(FAULTS);
  try {
    await queueAll(stack, photos);
    await stack.resetEmulatorStats();
    const workers = stack.startWorkers(WORKERS, { BYBYBG_RATE_LIMIT: '', WORKER_CONCURRENCY: '16' });
    let raisedAt = 0;
    let found = Number.POSITIVE_INFINITY;
    await sample(stack, (points, firstAt) => {
      const now = points.at(-1)!.at;
      if (!firstAt) return now - points[0]!.at < 60_000;
      if (!raisedAt && now - firstAt >= RAISE_AT_S * 1000) {
        raisedAt = now;
        void stack.setFaults({ rateLimit: { perSecond: UPGRADED, burst: 5 } });
      }
      if (raisedAt) {
        // Successes over the last two seconds.
        const back = points.findLast((point) => point.at <= now - 2_000);
        if (back && back.at >= raisedAt && (points.at(-1)!.ok - back.ok) / ((now - back.at) / 1000) >= UPGRADED * 0.9) {
          found = (now - raisedAt) / 1000;
          return false;
        }
        if (now - raisedAt > TIMEOUT_S * 1000) return false;
      }
      return true;
    });
    await workers;
    context.log(`  plan upgrade ${L} → ${UPGRADED}/s: 90 % of the new limit used after ${round(found)} s`);
    return found;
  } finally {
    await stack.close();
  }
}

/** Samples the emulator's counters every 100 ms while `go(points, first call at)` says so. */
async function sample(
  stack: BenchStack,
  go: (points: MeterPoint[], firstAt: number) => boolean,
): Promise<MeterPoint[]> {
  const points: MeterPoint[] = [];
  let firstAt = 0;
  for (;;) {
    const snapshot = await stack.emulatorStats();
    const point = {
      at: performance.now(),
      ok: snapshot.byStatus['200'] ?? 0,
      rateLimited: snapshot.byStatus['429'] ?? 0,
      total: snapshot.total,
    };
    points.push(point);
    if (!firstAt && point.total > 0) firstAt = point.at;
    if (!go(points, firstAt)) return points;
    await sleep(100);
  }
}

/** The counters for `seconds` from the first upstream call (a minute at most for it to come). */
function meterWindow(stack: BenchStack, seconds: number): Promise<MeterPoint[]> {
  return sample(stack, (points, firstAt) => {
    const now = points.at(-1)!.at;
    return firstAt ? now - firstAt <= (seconds + 0.3) * 1000 : now - points[0]!.at < 60_000;
  });
}

async function settledStatuses(apiUrl: string, stack: BenchStack, ids: string[]): Promise<Record<string, number>> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const counts = await jobStatuses(apiUrl, stack.apiKey, ids);
    if (!counts.queued && !counts.processing) return counts;
    if (Date.now() > deadline) return counts;
    await sleep(500);
  }
}

function writeChart(context: ScenarioContext, series: Parameters<typeof rateChartSvg>[0]['series']): void {
  const file = fileURLToPath(
    new URL(`../results/cold-start-discovery${context.quick ? '-quick' : ''}.svg`, import.meta.url),
  );
  writeFileSync(
    file,
    rateChartSvg({
      title: `Cold start: ~${series[0]!.seconds.length} s against an unknown limit of ${L} calls/s (burst 5, no rate-limit headers)`,
      series,
      limit: () => L,
    }),
  );
  context.log(`  chart: ${file}`);
}
