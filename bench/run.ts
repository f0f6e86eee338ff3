/**
 * The benchmark harness (issue 8): every scenario against the real system and a baseline
 * in the same invocation.
 *
 *   npm run bench                      full sizes, 3 repetitions → bench/results/<date>.json
 *   npm run bench -- --quick           every scenario small, 1 repetition → bench/results/quick-<date>.json
 *   options: --reps=N  --scale=F (multiplies job counts)  --only=1,2,...  (scenario numbers; writes <date>-only-1-2.json)
 *
 * Exit code 1 only when the harness itself fails (a scenario throws); a missed target is
 * reported, never an error, so CI can run it on any machine.
 */
import '../test/helpers/undici-dispatcher.ts';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testRedis } from '../test/helpers/services.ts';
import { stopAllProcesses } from '../test/helpers/processes.ts';
import { MB } from './lib/proc.ts';
import {
  aggregate,
  describeMachine,
  markdownTable,
  resultsBlock,
  updateBenchmarksDoc,
  writeResults,
} from './lib/report.ts';
import type { Sample, Scenario } from './lib/types.ts';
import { bulkScenario } from './scenarios/bulk.ts';
import { durabilityScenario } from './scenarios/durability.ts';
import { latencyScenario } from './scenarios/latency.ts';
import { memoryScenario } from './scenarios/memory.ts';
import { edgeMemoryScenario } from './scenarios/edge-memory.ts';
import { pollingScenario } from './scenarios/polling.ts';
import { rateLimitedScenario } from './scenarios/rate-limited.ts';
import { workerMemoryScenario } from './scenarios/worker-memory.ts';
import { reviewPageScenario } from './scenarios/review-page.ts';
import { manifestMemoryScenario } from './scenarios/manifest-memory.ts';
import { noisyNeighbourScenario } from './scenarios/noisy-neighbour.ts';
import { renditionsScenario } from './scenarios/renditions.ts';
import { batchScaleScenario } from './scenarios/batch-scale.ts';
import { directUploadMemoryScenario } from './scenarios/direct-upload-memory.ts';
import { coldStartScenario } from './scenarios/cold-start.ts';

const args = process.argv.slice(2);
const option = (name: string): string | undefined => args.find((arg) => arg.startsWith(`--${name}=`))?.split('=')[1];
const quick = args.includes('--quick');
const reps = Number(option('reps') ?? (quick ? 1 : 3));
const scale = Number(option('scale') ?? 1);
const only = option('only')?.split(',').map(Number);
const size = (full: number, small: number) => Math.max(10, Math.round((quick ? small : full) * scale));

const scenarios: [number, Scenario][] = [
  [1, rateLimitedScenario(size(3_000, 300))],
  [2, durabilityScenario(size(5_000, 300), size(20_000, 2_000))],
  [3, latencyScenario(quick ? 10 : 30)],
  [
    4,
    memoryScenario(
      quick
        ? { bigBytes: 50 * MB, concurrentUploads: 10, concurrentBytes: 5 * MB }
        : { bigBytes: 200 * MB, concurrentUploads: 50, concurrentBytes: 20 * MB },
    ),
  ],
  [4, directUploadMemoryScenario(quick ? { files: 10, bytes: 5 * MB } : { files: 50, bytes: 20 * MB })],
  [4, edgeMemoryScenario({ concurrent: 4, bodyBytes: 4.5 * MB, rounds: quick ? 3 : 10 })],
  [4, workerMemoryScenario(quick ? 12 : 32)],
  [5, bulkScenario(quick ? 1_000 : 10_000)],
  [6, pollingScenario(quick ? 3 : 10)],
  [7, reviewPageScenario(quick ? 2_000 : 10_000)],
  [8, manifestMemoryScenario({ emptyBytes: 8_000_000, largeBytes: 24_900_000, acceptedRows: [10_000] })],
  [8, batchScaleScenario(quick ? 20_000 : 100_000)],
  [9, noisyNeighbourScenario(quick ? 100 : 300)],
  [10, renditionsScenario(quick ? 8 : 24)],
  // The same size quick or not: the 30-s window against the limit is the measurement.
  [11, coldStartScenario(1_000)],
];

const log = (message: string) => console.log(message);
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const date = new Date().toISOString().slice(0, 10);

async function main(): Promise<number> {
  const redis = await testRedis();
  const { machine, versions } = await describeMachine(redis.url);
  log(
    `bench: ${quick ? 'quick' : 'full'}, ${reps} repetition(s), scale ${scale}; ${JSON.stringify(machine)} ${JSON.stringify(versions)}`,
  );
  const repetitions: Sample[][] = [];
  let harnessFailed = false;
  for (const [number, scenario] of scenarios) {
    if (only && !only.includes(number)) continue;
    for (let rep = 1; rep <= reps; rep++) {
      log(`== ${number}. ${scenario.name} (repetition ${rep}/${reps})`);
      const started = performance.now();
      try {
        repetitions.push(await scenario.run({ quick, log }));
      } catch (error) {
        harnessFailed = true;
        log(`!! ${scenario.name} failed: ${(error as Error).stack ?? String(error)}`);
        await stopAllProcesses();
      }
      log(`   took ${Math.round((performance.now() - started) / 1000)} s`);
    }
  }
  const rows = aggregate(repetitions);
  // A partial run (--only) never replaces a full run's file.
  const file = join(resultsDir, `${quick ? 'quick-' : ''}${date}${only ? `-only-${only.join('-')}` : ''}.json`);
  writeResults(file, {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    repetitions: reps,
    scale,
    machine,
    versions,
    scenarios: rows,
  });
  log(`\n${markdownTable(rows)}\n\nresults: ${file}`);
  // Only a full run of every scenario updates the committed table.
  if (!quick && !only) {
    updateBenchmarksDoc(
      join(repoRoot, 'BENCHMARKS.md'),
      resultsBlock({ date, reps, scale, machine, versions, rows, file: relative(repoRoot, file) }),
    );
    log('BENCHMARKS.md updated');
  }
  await redis.close();
  return harnessFailed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    console.error(error);
    await stopAllProcesses();
    process.exit(1);
  },
);
