import { spawnProcess } from '../../test/helpers/processes.ts';
import { distinctPhotos } from '../lib/images.ts';
import { runLoad } from '../lib/load.ts';
import { countRedisCommands, perUnit } from '../lib/redis-commands.ts';
import { startBenchStack, submitJob } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Scenario } from '../lib/types.ts';

const CONCURRENCY = 20;
/** GETs of the counted pass, after the measured load (MONITOR slows Redis down, so never during it). */
const COUNTED_REQUESTS = 200;

/**
 * Scenario 6: `GET /v1/jobs/:id` (auth, Redis read, view) at a fixed concurrency against
 * fastify's hello world in its own process, both measured here, one after the other.
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

        const baseline = await runLoad({
          origin: helloUrl,
          path: '/',
          concurrency: CONCURRENCY,
          durationMs: seconds * 1000,
        });
        const cutout = await runLoad({
          origin: api.url,
          path: `/v1/jobs/${id}`,
          headers: { 'x-api-key': stack.apiKey },
          concurrency: CONCURRENCY,
          durationMs: seconds * 1000,
        });
        context.log(
          `  hello world ${round(baseline.perSecond)} req/s (p99 ${round(baseline.p99Ms)} ms); GET /v1/jobs/:id ${round(cutout.perSecond)} req/s (p99 ${round(cutout.p99Ms)} ms, ${cutout.errors} errors)`,
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
