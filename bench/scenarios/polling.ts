import { spawnProcess } from '../../test/helpers/processes.ts';
import { distinctPhotos } from '../lib/images.ts';
import { runLoad, type LoadResult } from '../lib/load.ts';
import { countRedisCommands, perUnit } from '../lib/redis-commands.ts';
import { startBenchStack, submitJob } from '../lib/stack.ts';
import { percentile, round } from '../lib/stats.ts';
import type { Scenario } from '../lib/types.ts';

const CONCURRENCY = 20;
/** Rounds of each server, alternated (ABBA…): this machine's speed drifts by 15 % and more between seconds. */
const ROUNDS = 4;
const WARM_UP_MS = 1_000;
/** GETs of the counted pass, after the measured load (MONITOR slows Redis down, so never during it). */
const COUNTED_REQUESTS = 200;

/**
 * Scenario 6: `GET /v1/jobs/:id` (auth, allowance, Redis read, view) at a fixed concurrency
 * against fastify's hello world in its own process: after a warm-up of each, `ROUNDS`
 * rounds of each, alternated, `seconds` in all per server; the medians of the rounds.
 */
export function pollingScenario(seconds: number): Scenario {
  return {
    name: 'status polling',
    async run(context) {
      const stack = await startBenchStack();
      const hello = spawnProcess({
        name: 'hello-world',
        command: process.execPath,
        args: ['bench/baselines/hello-world.ts'],
      });
      try {
        const api = await stack.startApi();
        const [photo] = await distinctPhotos(1);
        const id = await submitJob(api.url, stack.apiKey, photo!);
        const helloUrl = JSON.parse(await hello.waitForLine('hello-world listening', 60_000)).url as string;

        const servers: { origin: string; path: string; headers: Record<string, string> }[] = [
          { origin: helloUrl, path: '/', headers: {} },
          { origin: api.url, path: `/v1/jobs/${id}`, headers: { 'x-api-key': stack.apiKey } },
        ];
        for (const server of servers) await runLoad({ ...server, concurrency: CONCURRENCY, durationMs: WARM_UP_MS });
        const rounds: [LoadResult[], LoadResult[]] = [[], []];
        for (let index = 0; index < ROUNDS; index++) {
          for (const which of index % 2 === 0 ? [0, 1] : [1, 0]) {
            const result = await runLoad({
              ...servers[which]!,
              concurrency: CONCURRENCY,
              durationMs: (seconds * 1000) / ROUNDS,
            });
            rounds[which as 0 | 1].push(result);
          }
        }
        const baseline = medianOf(rounds[0]);
        const cutout = medianOf(rounds[1]);
        context.log(
          `  hello world ${round(baseline.perSecond)} req/s (p99 ${round(baseline.p99Ms)} ms); GET /v1/jobs/:id ${round(cutout.perSecond)} req/s (p99 ${round(cutout.p99Ms)} ms, ${cutout.errors} errors); rounds: ${rounds[0].map((r) => round(r.perSecond)).join('/')} vs ${rounds[1].map((r) => round(r.perSecond)).join('/')} req/s`,
        );
        const { result: counted, count } = await countRedisCommands(stack.redisUrl, stack.prefix, () =>
          runLoad({
            origin: api.url,
            path: `/v1/jobs/${id}`,
            headers: { 'x-api-key': stack.apiKey },
            concurrency: CONCURRENCY,
            durationMs: 60_000,
            maxRequests: COUNTED_REQUESTS,
          }),
        );
        // The load generator's warm-up sends one request per connection besides those it counts.
        const commands = perUnit(count, counted.requests + CONCURRENCY);
        context.log(
          `  Redis commands per GET: ${commands.total} (+ ${commands.insideScripts} inside scripts) ${JSON.stringify(commands.byCommand)}`,
        );
        return [
          {
            name: `6 polling: GET /v1/jobs/:id req/s at concurrency ${CONCURRENCY}`,
            value: round(cutout.perSecond),
            unit: 'req/s',
            baseline: round(baseline.perSecond),
            target: '≥ 0.3 × hello world',
            meets: (value, base) => value >= 0.3 * (base ?? Infinity),
          },
          {
            name: '6 polling: GET /v1/jobs/:id p99',
            value: round(cutout.p99Ms),
            unit: 'ms',
            baseline: round(baseline.p99Ms),
            target: '≤ 5',
            meets: (value) => value <= 5,
          },
          {
            name: '6 polling: Redis commands per GET (context)',
            value: commands.total,
            unit: 'commands',
            detail: commands.byCommand,
          },
          {
            name: '6 polling: non-200 answers',
            value: cutout.errors,
            unit: 'requests',
            target: '0',
            meets: (value) => value === 0,
          },
        ];
      } finally {
        hello.killGroup('SIGKILL');
        await hello.exited;
        await stack.close();
      }
    },
  };
}

/** The median throughput and p99 of the rounds, and every error of them. */
function medianOf(rounds: readonly LoadResult[]): { perSecond: number; p99Ms: number; errors: number } {
  return {
    perSecond: percentile(
      rounds.map((result) => result.perSecond),
      50,
    ),
    p99Ms: percentile(
      rounds.map((result) => result.p99Ms),
      50,
    ),
    errors: rounds.reduce((sum, result) => sum + result.errors, 0),
  };
}
