import { createLogger } from '@cutout/shared/infra';
import { parseRenditions } from '@cutout/shared/renditions';
import type { JobRecord } from '@cutout/shared/stores';
import { DEFAULT_QUALITY_THRESHOLDS } from '@cutout/shared/views';
import { productImage, type ProductShot } from '../../test/helpers/images.ts';
import { cutoutPng } from '../../test/helpers/cutouts.ts';
import { makeCutoutOutputs } from '../../apps/worker/src/postprocess/outputs.ts';
import { mapLimit } from '../lib/load.ts';
import { MB, readCpuMs, sampleRss } from '../lib/proc.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { startBenchStack, submitJob, type BenchStack } from '../lib/stack.ts';
import { median, round } from '../lib/stats.ts';
import type { Sample, Scenario } from '../lib/types.ts';

const CONCURRENCY = 4;
/** A 3000 × 2000 photo, the product a third of the frame wide. */
const SHOT: ProductShot = { width: 3000, height: 2000, object: { left: 1000, top: 500, width: 1000, height: 1000 } };
/** 24 MP, where the decoded cutouts (96 MB each) outweigh what the allocator keeps around. */
const LARGE: ProductShot = { width: 6000, height: 4000, object: { left: 2000, top: 1000, width: 2000, height: 2000 } };
const SPECS = [
  { name: 'amazon', preset: 'marketplace' },
  { name: 'web', preset: 'web' },
  { name: 'thumb', format: 'png', max_size: 400 },
];

/**
 * Scenario 10: what renditions and quality flags cost per image. In this process: the
 * quality measure alone, and decoding plus three renditions (marketplace JPEG, web WebP,
 * a 400 px PNG), on a 3000 × 2000 cutout, against a memory S3 that stores nothing. Then
 * the real system: one worker (concurrency 4) processes `jobs` 3000 × 2000 photos (the
 * emulator makes real cutouts) without renditions and with the three: the worker's CPU
 * time per job (user + system, which a busy machine disturbs far less than wall time) and
 * its peak RSS. Last, 6000 × 4000 photos with the three, RENDITION_CONCURRENCY 2 (the
 * default) against 4 (every job decoding at once).
 */
export function renditionsScenario(jobs: number): Scenario {
  return {
    name: 'renditions',
    async run(context) {
      const samples = [...(await inProcess(context.log))];
      const stack = await startBenchStack();
      try {
        const api = await stack.startApi();
        const renditions = { renditions: JSON.stringify(SPECS) };
        const none = await drain(stack, api.url, SHOT, jobs, {}, 0);
        const three = await drain(stack, api.url, SHOT, jobs, renditions, jobs);
        context.log(
          `  3000×2000: worker CPU per job ${none.cpuMs} ms without renditions, ${three.cpuMs} ms with 3; peak RSS ${none.rssMb} / ${three.rssMb} MB`,
        );
        const gated = await drain(stack, api.url, LARGE, jobs, renditions, 2 * jobs);
        const ungated = await drain(stack, api.url, LARGE, jobs, renditions, 3 * jobs, {
          RENDITION_CONCURRENCY: String(CONCURRENCY),
        });
        context.log(
          `  6000×4000 with 3: peak RSS ${gated.rssMb} MB (RENDITION_CONCURRENCY 2), ${ungated.rssMb} MB (${CONCURRENCY})`,
        );
        const what = (size: string) => `${jobs} ${size} jobs, WORKER_CONCURRENCY ${CONCURRENCY}`;
        samples.push(
          {
            name: `8 renditions: worker CPU time per job, ${what('3000×2000')}, with 3 renditions (baseline: none; quality measured in both)`,
            value: three.cpuMs,
            unit: 'ms',
            baseline: none.cpuMs,
          },
          {
            name: `8 renditions: worker peak RSS, ${what('3000×2000')}, with 3 renditions (baseline: none)`,
            value: three.rssMb,
            unit: 'MB',
            baseline: none.rssMb,
          },
          {
            name: `8 renditions: worker peak RSS, ${what('6000×4000')}, with 3 renditions, RENDITION_CONCURRENCY 2 (baseline: ${CONCURRENCY}, every job decoding at once)`,
            value: gated.rssMb,
            unit: 'MB',
            baseline: ungated.rssMb,
            target: '< baseline',
            meets: (value, baseline) => value < (baseline ?? 0),
          },
        );
        return samples;
      } finally {
        await stack.close();
      }
    },
  };
}

async function inProcess(log: (message: string) => void): Promise<Sample[]> {
  const parsed = parseRenditions(SPECS);
  if (!parsed.ok) throw new Error(parsed.message);
  const cutout = await cutoutPng({ width: SHOT.width, height: SHOT.height, box: SHOT.object });
  const stored = {
    putBuffer: async (_key: string, body: Buffer, contentType: string) => ({ bytes: body.length, contentType }),
  };
  const outputs = makeCutoutOutputs({
    storage: stored as never,
    maxPixels: 50_000_000,
    thresholds: DEFAULT_QUALITY_THRESHOLDS,
    decodeSlots: 1,
    log: createLogger({ level: 'silent', name: 'bench' }),
  });
  const record = (plans: JobRecord['renditionPlans']): JobRecord => ({
    id: 'job_bench',
    tenantId: 'bench',
    status: 'processing',
    createdAt: '',
    attempts: 0,
    upstreamCalls: 1,
    originalKey: '',
    originalBytes: 0,
    originalContentType: '',
    renditionPlans: plans,
  });
  const time = async (plans: JobRecord['renditionPlans']) => {
    const runs: number[] = [];
    for (let i = 0; i < 7; i++) {
      const started = performance.now();
      await outputs.make(record(plans), cutout);
      runs.push(performance.now() - started);
    }
    return round(median(runs.slice(2)), 1);
  };
  const qualityMs = await time([]);
  const renditionsMs = await time(parsed.plans);
  log(
    `  in process, one 3000×2000 cutout: quality ${qualityMs} ms; decode + quality + 3 renditions ${renditionsMs} ms`,
  );
  return [
    { name: '10 renditions: quality flags alone, one 3000×2000 cutout, in process', value: qualityMs, unit: 'ms' },
    {
      name: '10 renditions: decode + quality + 3 renditions (marketplace, web, 400 px PNG), one 3000×2000 cutout, in process',
      value: renditionsMs,
      unit: 'ms',
      baseline: qualityMs,
    },
  ];
}

async function drain(
  stack: BenchStack,
  apiUrl: string,
  shot: ProductShot,
  jobs: number,
  fields: Record<string, string>,
  firstVariant: number,
  env: Record<string, string> = {},
): Promise<{ cpuMs: number; rssMb: number }> {
  const photos = await mapLimit(jobs, 4, (index) => productImage('png', shot, firstVariant + index));
  const [worker] = await stack.startWorkers(1, {
    BYBYBG_RATE_LIMIT: '5000',
    WORKER_CONCURRENCY: String(CONCURRENCY),
    ...env,
  });
  // Idle first, so start-up (loading the code) is not counted as work.
  await sleep(1_000);
  const cpuBefore = readCpuMs(worker!.pid);
  const sampler = sampleRss(worker!.pid);
  const waiting = stack.receiver.waitForJobs(stack.receiver.arrivals.size + jobs, 600_000);
  const ids = await mapLimit(jobs, 4, (index) =>
    submitJob(apiUrl, stack.apiKey, photos[index]!, { ...fields, webhook_url: stack.receiver.url }),
  );
  await waiting;
  const cpuMs = readCpuMs(worker!.pid) - cpuBefore;
  const { peakRss, hwm } = sampler.stop();
  worker!.kill('SIGTERM');
  await worker!.waitForExit(30_000);
  for (const id of ids) {
    const view = stack.receiver.events.get(id) as { status: string } | undefined;
    if (view?.status !== 'succeeded') throw new Error(`job ${id} did not succeed: ${JSON.stringify(view)}`);
  }
  return { cpuMs: round(cpuMs / jobs, 0), rssMb: round(Math.max(peakRss, hwm) / MB, 1) };
}
