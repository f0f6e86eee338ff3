import { setTimeout as sleep } from 'node:timers/promises';
import { distinctPhotos } from '../lib/images.ts';
import { startBenchStack, submitJob } from '../lib/stack.ts';
import { percentile, round } from '../lib/stats.ts';
import type { Scenario } from '../lib/types.ts';

const RATE = 10;
const WARMUP = 20;

/**
 * Scenario 3: an open loop of 10 jobs/s (each submitted on schedule, whether or not the
 * previous one was answered), ByByBG instant with a fixed result; latency from the API's
 * 202 to the webhook arriving at a loopback receiver.
 */
export function latencyScenario(seconds: number): Scenario {
  return {
    name: 'latency',
    async run(context) {
      const count = seconds * RATE;
      const photos = await distinctPhotos(WARMUP + count);
      const stack = await startBenchStack({ fixedResult: true });
      try {
        const api = await stack.startApi();
        await stack.startWorkers(2, { BYBYBG_RATE_LIMIT: '5000' });
        const fields = { webhook_url: stack.receiver.url };
        // Warm-up: connections, JIT, BullMQ's scripts loaded; not measured.
        await Promise.all(photos.slice(0, WARMUP).map((photo) => submitJob(api.url, stack.apiKey, photo, fields)));
        await stack.receiver.waitForJobs(WARMUP, 60_000);

        const accepted = new Map<string, number>();
        const requestMs: number[] = [];
        const start = performance.now();
        const submissions: Promise<void>[] = [];
        for (let index = 0; index < count; index++) {
          const due = start + (index * 1000) / RATE;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          const sent = performance.now();
          submissions.push(
            submitJob(api.url, stack.apiKey, photos[WARMUP + index]!, fields).then((id) => {
              const now = performance.now();
              accepted.set(id, now);
              requestMs.push(now - sent);
            }),
          );
        }
        await Promise.all(submissions);
        await stack.receiver.waitForJobs(WARMUP + count, 60_000);
        const latencies = [...accepted].map(([id, at]) => stack.receiver.arrivals.get(id)! - at);
        const p50 = percentile(latencies, 50);
        const p99 = percentile(latencies, 99);
        // Where the time goes, from the job's own timestamps (ms resolution, one clock: this machine's).
        const stages = { queued: [] as number[], processing: [] as number[], delivery: [] as number[] };
        for (const [id] of accepted) {
          const job = stack.receiver.events.get(id) as
            | { created_at?: string; started_at?: string; finished_at?: string }
            | undefined;
          if (!job?.created_at || !job.started_at || !job.finished_at) continue;
          const [created, startedAt, finished] = [job.created_at, job.started_at, job.finished_at].map((text) =>
            Date.parse(text),
          );
          stages.queued.push(startedAt! - created!);
          stages.processing.push(finished! - startedAt!);
          stages.delivery.push(stack.receiver.arrivals.get(id)! - performance.now() + Date.now() - finished!);
        }
        context.log(
          `  p50 by stage: created → started ${round(percentile(stages.queued, 50))} ms, started → finished ${round(percentile(stages.processing, 50))} ms, finished → webhook received ${round(percentile(stages.delivery, 50))} ms`,
        );
        context.log(
          `  202 → webhook: p50 ${round(p50)} ms, p99 ${round(p99)} ms, max ${round(Math.max(...latencies))} ms; POST /v1/jobs p50 ${round(percentile(requestMs, 50))} ms`,
        );
        return [
          {
            name: '3 latency: 202 → webhook received, p50',
            value: round(p50),
            unit: 'ms',
            target: '≤ 30',
            meets: (value) => value <= 30,
          },
          {
            name: '3 latency: 202 → webhook received, p99',
            value: round(p99),
            unit: 'ms',
            target: '≤ 150',
            meets: (value) => value <= 150,
          },
          {
            name: '3 latency: POST /v1/jobs answer time, p50 (context)',
            value: round(percentile(requestMs, 50)),
            unit: 'ms',
          },
        ];
      } finally {
        await stack.close();
      }
    },
  };
}
