import { spawnProcess } from '../../test/helpers/processes.ts';
import { distinctPhotos } from '../lib/images.ts';
import { runLoad } from '../lib/load.ts';
import { startBenchStack, submitJob } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Scenario } from '../lib/types.ts';

const CONCURRENCY = 20;

/**
 * Scenario 6: `GET /v1/jobs/:id` (auth, Redis read, view) at a fixed concurrency against
 * fastify's hello world in its own process, both measured here, one after the other.
 */
export function pollingScenario(seconds: number): Scenario {
  return {
    name: 'status polling',
    async run(context) {
      const stack = await startBenchStack();
      const hello = spawnProcess({ name: 'hello-world', command: process.execPath, args: ['bench/baselines/hello-world.ts'] });
      try {
        const api = await stack.startApi();
        const [photo] = await distinctPhotos(1);
        const id = await submitJob(api.url, stack.apiKey, photo!);
        const helloUrl = JSON.parse(await hello.waitForLine('hello-world listening', 60_000)).url as string;

        const baseline = await runLoad({ origin: helloUrl, path: '/', concurrency: CONCURRENCY, durationMs: seconds * 1000 });
        const cutout = await runLoad({ origin: api.url, path: `/v1/jobs/${id}`, headers: { 'x-api-key': stack.apiKey }, concurrency: CONCURRENCY, durationMs: seconds * 1000 });
        context.log(`  hello world ${round(baseline.perSecond)} req/s (p99 ${round(baseline.p99Ms)} ms); GET /v1/jobs/:id ${round(cutout.perSecond)} req/s (p99 ${round(cutout.p99Ms)} ms, ${cutout.errors} errors)`);
        return [
          {
            name: `6 polling: GET /v1/jobs/:id req/s at concurrency ${CONCURRENCY}`, value: round(cutout.perSecond), unit: 'req/s', baseline: round(baseline.perSecond),
            target: '≥ 0.3 × hello world', meets: (value, base) => value >= 0.3 * (base ?? Infinity),
          },
          { name: '6 polling: GET /v1/jobs/:id p99', value: round(cutout.p99Ms), unit: 'ms', baseline: round(baseline.p99Ms) },
          { name: '6 polling: non-200 answers', value: cutout.errors, unit: 'requests', target: '0', meets: (value) => value === 0 },
        ];
      } finally {
        hello.killGroup('SIGKILL');
        await hello.exited;
        await stack.close();
      }
    },
  };
}
