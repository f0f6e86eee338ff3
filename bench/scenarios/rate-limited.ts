import { setTimeout as sleep } from 'node:timers/promises';
import { upstreamKeys } from '@cutout/shared/stores';
import { runNaiveClient } from '../baselines/naive-client.ts';
import { distinctPhotos } from '../lib/images.ts';
import { mapLimit } from '../lib/load.ts';
import { jobStatuses, startBenchStack, submitJob, type BenchStack } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Sample, Scenario, ScenarioContext } from '../lib/types.ts';
import { meterUpstream, readUpstream, type UpstreamReading } from '../lib/upstream-meter.ts';

const R = 50;
const FAULTS = { rateLimit: { perSecond: R, burst: 5 }, latencyMs: 75, latencyJitterMs: 50 };
const WORKERS = 2;

/**
 * Scenario 1: ByByBG limits the key to R = 50 calls/s (burst 5) and answers in 100 ± 25 ms.
 * The jobs are queued first through the API, then two worker processes drain them; the
 * emulator's counters say how close to R they got and how many 429s it cost. The naive
 * client runs the same images against the same emulator in the same repetition.
 */
export function rateLimitedScenario(jobs: number): Scenario {
  return {
    name: 'rate-limited upstream',
    async run(context) {
      const photos = await distinctPhotos(jobs);
      const fixed = await runCutout(context, photos, 'fixed', true);
      const naive = fixed.naive!;
      const discovery = await runCutout(context, photos, 'discovery', false);
      return [
        ...samples('BYBYBG_RATE_LIMIT=50', fixed.reading, fixed.failed, naive),
        ...samples('discovery', discovery.reading, discovery.failed, naive),
      ];
    },
  };
}

function samples(mode: string, cutout: UpstreamReading, failed: number, naive: UpstreamReading): Sample[] {
  return [
    {
      name: `1 rate-limited, ${mode}: successful upstream calls/s`,
      value: round(cutout.steadyOkPerSecond),
      unit: 'calls/s',
      baseline: round(naive.steadyOkPerSecond),
      target: `≥ ${0.95 * R} (0.95 R) and > naive`,
      meets: (value, baseline) => value >= 0.95 * R && value > (baseline ?? 0),
    },
    {
      name: `1 rate-limited, ${mode}: 429 share of upstream calls`,
      value: round(cutout.rateLimitedShare * 100, 3),
      unit: '%',
      baseline: round(naive.rateLimitedShare * 100, 3),
      target: '≤ 2 % and ≤ 1/10 of naive',
      meets: (value, baseline) => value <= 2 && value <= (baseline ?? 0) / 10,
    },
    {
      name: `1 rate-limited, ${mode}: failed jobs`,
      value: failed,
      unit: 'jobs',
      target: '0',
      meets: (value) => value === 0,
    },
    {
      name: `1 rate-limited, ${mode}: time to drain the queue`,
      value: round(cutout.seconds),
      unit: 's',
      baseline: round(naive.seconds),
    },
  ];
}

async function runCutout(
  context: ScenarioContext,
  photos: Buffer[],
  mode: 'fixed' | 'discovery',
  withNaive: boolean,
): Promise<{ reading: UpstreamReading; failed: number; naive?: UpstreamReading }> {
  const stack = await startBenchStack(FAULTS);
  try {
    const api = await stack.startApi();
    const started = performance.now();
    const ids = await mapLimit(photos.length, 16, (index) => submitJob(api.url, stack.apiKey, photos[index]!));
    context.log(`  ${mode}: ${ids.length} jobs queued in ${round((performance.now() - started) / 1000)} s`);

    let naive: UpstreamReading | undefined;
    if (withNaive) {
      naive = await measureNaive(stack, photos);
      context.log(
        `  naive client: ${round(naive.steadyOkPerSecond)} calls/s, ${naive.rateLimited} × 429 of ${naive.total} calls`,
      );
      await sleep(500); // let the token bucket refill
    }

    await stack.resetEmulatorStats();
    const workers = stack.startWorkers(WORKERS, {
      BYBYBG_RATE_LIMIT: mode === 'fixed' ? String(R) : '',
      WORKER_CONCURRENCY: '16',
    });
    const { points, timedOut } = await meterUpstream(() => stack.emulatorStats(), {
      expectedOk: photos.length,
      timeoutMs: timeoutFor(photos.length),
      done: () => false,
    });
    await workers;
    if (timedOut) context.log(`  ${mode}: upstream calls did not finish in time`);
    const reading = readUpstream(points, photos.length);
    // What the shared rate governor settled on, to explain the numbers.
    const governor = await stack.redis.hgetall(upstreamKeys(stack.prefix).governor);
    context.log(
      `  ${mode}: governor rate ${round(Number(governor.rate))}/s, ceiling ${round(Number(governor.ceiling))}, phase ${governor.phase}, reason "${governor.reason}"`,
    );
    const statuses = await settledStatuses(api.url, stack, ids);
    context.log(
      `  ${mode}: ${round(reading.steadyOkPerSecond)} calls/s, ${reading.rateLimited} × 429 of ${reading.total} calls, jobs ${JSON.stringify(statuses)}`,
    );
    const unfinished = photos.length - (statuses.succeeded ?? 0) - (statuses.failed ?? 0);
    if (unfinished > 0) context.log(`  ${mode}: ${unfinished} jobs had not finished when the time limit hit`);
    return { reading, failed: statuses.failed ?? 0, naive };
  } finally {
    await stack.close();
  }
}

async function measureNaive(stack: BenchStack, photos: Buffer[]): Promise<UpstreamReading> {
  await stack.resetEmulatorStats();
  let finished = false;
  const client = runNaiveClient({
    apiUrl: stack.emulator.url,
    apiKey: stack.emulatorKey,
    photos,
    inFlight: 40,
  }).finally(() => {
    finished = true;
  });
  const { points } = await meterUpstream(() => stack.emulatorStats(), {
    expectedOk: photos.length,
    timeoutMs: timeoutFor(photos.length),
    done: () => finished,
  });
  await client;
  const last = await stack.emulatorStats();
  points.push({
    at: performance.now(),
    ok: last.byStatus['200'] ?? 0,
    rateLimited: last.byStatus['429'] ?? 0,
    total: last.total,
  });
  return readUpstream(points, photos.length);
}

/** Waits (bounded) until no job is queued or processing any more; returns the status counts. */
async function settledStatuses(apiUrl: string, stack: BenchStack, ids: string[]): Promise<Record<string, number>> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const counts = await jobStatuses(apiUrl, stack.apiKey, ids);
    if (!counts.queued && !counts.processing) return counts;
    if (Date.now() > deadline) return counts;
    await sleep(500);
  }
}

const timeoutFor = (jobs: number) => (jobs / R) * 6_000 + 60_000;
