import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { bigPng } from '../lib/big-png.ts';
import { MB, readMemory, sampleRss } from '../lib/proc.ts';
import { startBenchStack } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Scenario } from '../lib/types.ts';

type Json = Record<string, any>;

/**
 * Scenario 4 (direct uploads): the API process's memory while `files` files of `bytes` each
 * go straight to S3 with presigned PUTs, all at once: `POST /v1/uploads` for all of them,
 * the PUTs from this process to the S3 server (the API never sees a byte of them), then
 * `POST /v1/batches {"upload_id"}`. Peak VmRSS (every 25 ms, and VmHWM) above idle, after a
 * warm-up of the same three calls with one small file.
 */
export function directUploadMemoryScenario({ files, bytes }: { files: number; bytes: number }): Scenario {
  return {
    name: 'direct-upload-memory',
    async run(context) {
      const stack = await startBenchStack();
      try {
        const api = await stack.startApi({ MAX_UPLOAD_BYTES: String(bytes + 16 * MB) });
        const call = async (method: 'GET' | 'POST', path: string, body: unknown): Promise<Json> => {
          const response = await request(`${api.url}${path}`, {
            method,
            body: JSON.stringify(body),
            headers: { 'x-api-key': stack.apiKey, 'content-type': 'application/json' },
          });
          const json = (await response.body.json()) as Json;
          if (response.statusCode >= 300)
            throw new Error(`${method} ${path} answered ${response.statusCode}: ${JSON.stringify(json).slice(0, 300)}`);
          return json;
        };
        const uploadAll = async (count: number, size: number) => {
          const pngs = Array.from({ length: count }, (_, index) => bigPng(size, index));
          const upload = await call('POST', '/v1/uploads', {
            files: pngs.map((png, index) => ({
              name: `photo-${index}.png`,
              content_type: 'image/png',
              bytes: png.length,
            })),
          });
          await Promise.all(
            (upload.files as Json[]).map(async (file, index) => {
              const response = await request(file.put_url, {
                method: 'PUT',
                body: Readable.from(pngs[index]!.chunks()),
                headers: file.headers,
                headersTimeout: 300_000,
                bodyTimeout: 300_000,
              });
              await response.body.dump();
              if (response.statusCode !== 200) throw new Error(`PUT answered ${response.statusCode}`);
            }),
          );
          const batch = await call('POST', '/v1/batches', { upload_id: upload.id });
          if (batch.counts.total !== count)
            throw new Error(
              `the batch has ${batch.counts.total} items, not ${count}: ${JSON.stringify(batch.rejected).slice(0, 300)}`,
            );
        };
        await uploadAll(1, 1 * MB);
        await sleep(1_000);
        const idle = readMemory(api.process.pid);
        const sampler = sampleRss(api.process.pid);
        const started = performance.now();
        await uploadAll(files, bytes);
        const seconds = (performance.now() - started) / 1000;
        const peak = sampler.stop();
        const growth = (Math.max(peak.peakRss, peak.hwm > idle.hwm ? peak.hwm : 0) - idle.rss) / MB;
        context.log(
          `  ${files} × ${round(bytes / MB)} MB straight to S3 in ${round(seconds, 1)} s: API idle ${round(idle.rss / MB)} MB, peak +${round(growth)} MB`,
        );
        return [
          {
            name: `4 memory: API peak RSS above idle, ${files} concurrent ${Math.round(bytes / MB)} MB files uploaded straight to S3 (direct uploads)`,
            value: round(growth, 1),
            unit: 'MB',
            target: '≤ 50',
            meets: (value) => value <= 50,
          },
          {
            name: `4 memory: ${files} × ${Math.round(bytes / MB)} MB direct uploads, upload to batch (context)`,
            value: round(seconds, 1),
            unit: 's',
          },
        ];
      } finally {
        await stack.close();
      }
    },
  };
}
