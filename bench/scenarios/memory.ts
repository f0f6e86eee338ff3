import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { bigPng, multipartFile } from '../lib/big-png.ts';
import { distinctPhotos } from '../lib/images.ts';
import { MB, readMemory, sampleRss } from '../lib/proc.ts';
import { startBenchStack, submitJob } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Scenario } from '../lib/types.ts';

/**
 * Scenario 4: the API process's memory while it streams large uploads to S3. RSS is read
 * from /proc/<pid>/status of the API child (VmRSS sampled every 25 ms, and VmHWM).
 */
export function memoryScenario({
  bigBytes,
  concurrentUploads,
  concurrentBytes,
}: {
  bigBytes: number;
  concurrentUploads: number;
  concurrentBytes: number;
}): Scenario {
  return {
    name: 'memory',
    async run(context) {
      const stack = await startBenchStack();
      try {
        const api = await stack.startApi({ MAX_UPLOAD_BYTES: String(bigBytes + 16 * MB) });
        const pid = api.process.pid;
        // Warm-up, so lazily loaded code and first-use buffers count as idle.
        const [photo] = await distinctPhotos(1);
        await submitJob(api.url, stack.apiKey, photo!);
        await upload(api.url, stack.apiKey, 4 * MB);
        await sleep(1_000);
        const idle = readMemory(pid);

        const big = sampleRss(pid);
        await upload(api.url, stack.apiKey, bigBytes);
        const bigPeak = big.stop();
        const bigGrowth = (Math.max(bigPeak.peakRss, bigPeak.hwm > idle.hwm ? bigPeak.hwm : 0) - idle.rss) / MB;
        context.log(
          `  idle RSS ${round(idle.rss / MB)} MB; one ${round(bigBytes / MB)} MB upload: peak +${round(bigGrowth)} MB`,
        );

        await sleep(1_000);
        const before = readMemory(pid);
        const many = sampleRss(pid);
        await Promise.all(
          Array.from({ length: concurrentUploads }, () => upload(api.url, stack.apiKey, concurrentBytes)),
        );
        const manyPeak = many.stop();
        const manyGrowth = (Math.max(manyPeak.peakRss, manyPeak.hwm > before.hwm ? manyPeak.hwm : 0) - idle.rss) / MB;
        context.log(
          `  ${concurrentUploads} concurrent ${round(concurrentBytes / MB)} MB uploads: peak idle +${round(manyGrowth)} MB`,
        );
        return [
          {
            name: `4 memory: API peak RSS growth, one ${Math.round(bigBytes / MB)} MB upload`,
            value: round(bigGrowth, 1),
            unit: 'MB',
            target: '≤ 64',
            meets: (value) => value <= 64,
          },
          {
            name: `4 memory: API peak RSS above idle, ${concurrentUploads} concurrent ${Math.round(concurrentBytes / MB)} MB uploads`,
            value: round(manyGrowth, 1),
            unit: 'MB',
            target: '≤ 300',
            meets: (value) => value <= 300,
          },
          { name: '4 memory: API idle RSS (context)', value: round(idle.rss / MB, 1), unit: 'MB' },
        ];
      } finally {
        await stack.close();
      }
    },
  };
}

export async function upload(
  apiUrl: string,
  apiKey: string,
  bytes: number,
  variant = 0,
  fields: Record<string, string> = {},
): Promise<void> {
  const form = multipartFile(bigPng(bytes, variant), fields);
  const response = await request(`${apiUrl}/v1/jobs`, {
    method: 'POST',
    body: Readable.from(form.body(), { objectMode: false }),
    headers: { 'x-api-key': apiKey, 'content-type': form.contentType, 'content-length': String(form.length) },
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  });
  const text = await response.body.text();
  if (response.statusCode !== 202)
    throw new Error(`upload of ${bytes} bytes answered ${response.statusCode}: ${text.slice(0, 300)}`);
}
