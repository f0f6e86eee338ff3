import { setTimeout as sleep } from 'node:timers/promises';
import { bullmqNoopRate } from '../baselines/bullmq-noop.ts';
import { runDirectPipeline } from '../baselines/direct-pipeline.ts';
import { distinctPhotos } from '../lib/images.ts';
import { mapLimit } from '../lib/load.ts';
import { redisBytesByGroup } from '../lib/redis-memory.ts';
import { countRedisCommands, perUnit, type CommandCount } from '../lib/redis-commands.ts';
import { countS3Calls, s3PerUnit, type S3CallCount } from '../lib/s3-calls.ts';
import type { RunningProcess } from '../../test/helpers/processes.ts';
import { startBenchStack, submitJob } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Sample, Scenario } from '../lib/types.ts';

const WORKERS = 2;
const WORKER_CONCURRENCY = 8;
/** Cutout's images in flight (2 workers × 8); the baseline and the uploading client use the same. */
const CONCURRENCY = WORKERS * WORKER_CONCURRENCY;
/** Images of each counted pass (Redis commands and S3 calls per image), run after the measured ones. */
const COUNTED = 100;

/**
 * Scenario 2: ByByBG unlimited and instant, answering a fixed 1×1 PNG. Upload → webhook
 * received for every image through Cutout, against a queue-less script doing the same I/O.
 * Also BullMQ's no-op rate on this Redis, and (scenario 5's second half) Redis bytes per
 * finished job, read from this run's keys once every webhook was delivered.
 */
export function durabilityScenario(jobs: number, noopJobs: number): Scenario {
  return {
    name: 'cost of durability',
    async run(context) {
      // Two sets of distinct photos: the second run must not reuse the first run's results.
      const allPhotos = await distinctPhotos(2 * jobs + 2 * COUNTED);
      const photos = allPhotos.slice(0, jobs);
      const countedPhotos = allPhotos.slice(2 * jobs);
      const stack = await startBenchStack({ fixedResult: true });
      try {
        const baselineStarted = performance.now();
        await runDirectPipeline({
          storage: stack.storage,
          upstreamUrl: stack.emulator.url,
          upstreamKey: stack.emulatorKey,
          webhookUrl: stack.receiver.url,
          photos,
          concurrency: CONCURRENCY,
        });
        const baselineRate = jobs / ((performance.now() - baselineStarted) / 1000);
        context.log(`  direct pipeline: ${round(baselineRate)} images/s`);
        stack.receiver.arrivals.clear();

        const api = await stack.startApi();
        const workerEnv = { BYBYBG_RATE_LIMIT: '5000', WORKER_CONCURRENCY: String(WORKER_CONCURRENCY) };
        // The script makes no thumbnails: the like-for-like run has them off.
        const workers = await stack.startWorkers(WORKERS, { ...workerEnv, THUMBNAIL_SIZE: '0' });
        const run = async (batch: Buffer[]) => {
          stack.receiver.arrivals.clear();
          const started = performance.now();
          await mapLimit(batch.length, CONCURRENCY, (index) =>
            submitJob(api.url, stack.apiKey, batch[index]!, { webhook_url: stack.receiver.url }),
          );
          const accepted = performance.now();
          await stack.receiver.waitForJobs(batch.length, Math.max(120_000, batch.length * 100));
          return {
            rate: batch.length / ((performance.now() - started) / 1000),
            acceptedAfterS: (accepted - started) / 1000,
          };
        };
        /** One pass of COUNTED images, with MONITOR on and the S3 server's requests counted. */
        const counted = async (
          batch: Buffer[],
          running: RunningProcess[],
        ): Promise<{ redis: CommandCount; s3: S3CallCount | null }> => {
          const { result, count: s3 } = await countS3Calls(stack.s3, () =>
            countRedisCommands(
              stack.redisUrl,
              stack.prefix,
              async () => {
                await run(batch);
                await sleep(1_000); // the delivery's own records are written after the receiver answered
              },
              { api: [api.process.pid], workers: running.map((worker) => worker.pid) },
            ),
          );
          return { redis: perUnit(result.count, batch.length), s3: s3 && s3PerUnit(s3, batch.length) };
        };
        const plain = await run(photos);
        const cutoutRate = plain.rate;
        context.log(`  Cutout: ${round(cutoutRate)} images/s (all accepted after ${round(plain.acceptedAfterS)} s)`);

        await sleep(1_000); // the workers record each delivery just after the receiver answers
        const bytes = await redisBytesByGroup(stack.redis, stack.prefix);
        const retained =
          (bytes['job record'] ?? 0) +
          (bytes['webhook attempt log'] ?? 0) +
          (bytes['duplicate-image claim'] ?? 0) +
          (bytes['tenant job index'] ?? 0);
        context.log(
          `  Redis bytes/job: ${JSON.stringify(Object.fromEntries(Object.entries(bytes).map(([group, total]) => [group, Math.round(total / jobs)])))}`,
        );
        // After the bytes are read, so its records do not count in them.
        const plainCounts = await counted(countedPhotos.slice(0, COUNTED), workers);
        context.log(
          `  per image, thumbnails off: ${plainCounts.redis.total} Redis commands (+ ${plainCounts.redis.insideScripts} inside scripts) ${JSON.stringify(plainCounts.redis.byProcess)} ${JSON.stringify(plainCounts.redis.byCommand)}; S3 calls ${JSON.stringify(plainCounts.s3)}`,
        );

        // The same again with the review page's thumbnails (the default): what they cost.
        for (const worker of workers) worker.kill('SIGTERM');
        await Promise.all(workers.map((worker) => worker.exited));
        const thumbnailWorkers = await stack.startWorkers(WORKERS, workerEnv);
        const thumbnailRate = (await run(allPhotos.slice(jobs, 2 * jobs))).rate;
        context.log(`  Cutout with thumbnails: ${round(thumbnailRate)} images/s`);
        const thumbnailCounts = await counted(countedPhotos.slice(COUNTED), thumbnailWorkers);
        context.log(
          `  per image, thumbnails on: ${thumbnailCounts.redis.total} Redis commands (+ ${thumbnailCounts.redis.insideScripts} inside scripts) ${JSON.stringify(thumbnailCounts.redis.byProcess)} ${JSON.stringify(thumbnailCounts.redis.byCommand)}; S3 calls ${JSON.stringify(thumbnailCounts.s3)}`,
        );

        const noop = await bullmqNoopRate(stack.redisUrl, noopJobs);
        context.log(`  BullMQ no-op: ${round(noop)} jobs/s`);
        return [
          {
            name: '2 durability: images/s, upload → webhook received',
            value: round(cutoutRate),
            unit: 'images/s',
            baseline: round(baselineRate),
            target: '≥ 0.7 × direct script',
            meets: (value, baseline) => value >= 0.7 * (baseline ?? Infinity),
          },
          {
            name: '2 durability: images/s with the review thumbnails on (the default)',
            value: round(thumbnailRate),
            unit: 'images/s',
            baseline: round(baselineRate),
            target: '≥ 0.6 × direct script',
            meets: (value, baseline) => value >= 0.6 * (baseline ?? Infinity),
          },
          {
            name: '2 durability: Redis commands per image, thumbnails off (context)',
            value: plainCounts.redis.total,
            unit: 'commands',
            detail: plainCounts.redis,
          },
          {
            name: '2 durability: S3 calls per image, thumbnails off (context)',
            value: plainCounts.s3?.total ?? NaN,
            unit: 'calls',
            detail: plainCounts.s3?.byCall,
          },
          {
            name: '2 durability: Redis commands per image, thumbnails on (context)',
            value: thumbnailCounts.redis.total,
            unit: 'commands',
            detail: thumbnailCounts.redis,
          },
          {
            name: '2 durability: S3 calls per image, thumbnails on (context)',
            value: thumbnailCounts.s3?.total ?? NaN,
            unit: 'calls',
            detail: thumbnailCounts.s3?.byCall,
          },
          { name: '2 durability: BullMQ no-op jobs/s on this Redis (context)', value: round(noop), unit: 'jobs/s' },
          {
            name: '5 bulk: Redis bytes per finished job record',
            value: Math.round((bytes['job record'] ?? 0) / jobs),
            unit: 'bytes',
            target: '≤ 2,048',
            meets: (value) => value <= 2048,
          },
          {
            name: '5 bulk: Redis bytes per finished job kept for the retention (record, attempts, dedup, index)',
            value: Math.round(retained / jobs),
            unit: 'bytes',
          },
        ] satisfies Sample[];
      } finally {
        await stack.close();
      }
    },
  };
}
