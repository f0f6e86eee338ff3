import { MB, sampleRss } from '../lib/proc.ts';
import { mapLimit } from '../lib/load.ts';
import { startBenchStack } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Scenario } from '../lib/types.ts';
import { upload } from './memory.ts';

const CONCURRENCY = 4;
const IMAGE_BYTES = 20 * MB;

/**
 * Scenario 4, third part: a worker's peak RSS while it drains 20 MB images, with a short
 * queue (= its concurrency) and a long one queued before it starts. Bounded by
 * concurrency means the long queue costs about what the short one does.
 */
export function workerMemoryScenario(longQueue: number): Scenario {
  return {
    name: 'worker memory',
    async run(context) {
      const stack = await startBenchStack({ fixedResult: true });
      try {
        const api = await stack.startApi({ MAX_UPLOAD_BYTES: String(IMAGE_BYTES + 16 * MB) });
        let variant = 0;
        let done = 0;
        const drain = async (jobs: number): Promise<number> => {
          await mapLimit(jobs, 4, () =>
            upload(api.url, stack.apiKey, IMAGE_BYTES, variant++, { webhook_url: stack.receiver.url }),
          );
          const [worker] = await stack.startWorkers(1, {
            BYBYBG_RATE_LIMIT: '5000',
            WORKER_CONCURRENCY: String(CONCURRENCY),
          });
          const sampler = sampleRss(worker!.pid);
          done += jobs;
          await stack.receiver.waitForJobs(done, 300_000);
          const { peakRss, hwm } = sampler.stop();
          worker!.kill('SIGTERM');
          await worker!.waitForExit(30_000);
          return Math.max(peakRss, hwm) / MB;
        };
        const short = await drain(CONCURRENCY);
        const long = await drain(longQueue);
        context.log(
          `  worker peak RSS: ${round(short)} MB with ${CONCURRENCY} queued, ${round(long)} MB with ${longQueue} queued (20 MB images, concurrency ${CONCURRENCY})`,
        );
        return [
          {
            name: `4 memory: worker peak RSS, ${longQueue} × 20 MB images queued (baseline: ${CONCURRENCY} queued), concurrency ${CONCURRENCY}`,
            value: round(long, 1),
            unit: 'MB',
            baseline: round(short, 1),
            target: '≤ 1.25 × the short queue (bounded by concurrency)',
            meets: (value, baseline) => value <= 1.25 * (baseline ?? 0),
          },
        ];
      } finally {
        await stack.close();
      }
    },
  };
}
