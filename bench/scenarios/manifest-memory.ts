import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { MB, readMemory, sampleRss } from '../lib/proc.ts';
import { startBenchStack } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Sample, Scenario } from '../lib/types.ts';

/** A manifest streamed in slices of this size, never built whole in this process either. */
const SLICE = 256 * 1024;

interface ManifestCase {
  label: string;
  bytes: number;
  header: string;
  row: (index: number) => string;
  rows?: number;
  env?: Record<string, string>;
  /** Reported as context, without a target (batches of this size are not accepted yet by default). */
  context?: boolean;
}

const urlRow = (index: number) =>
  `https://cdn.example.com/catalog/2026/spring/SKU-${String(index).padStart(7, '0')}-front.jpg,SKU-${index},red,XL\r\n`;

/**
 * Scenario 8: the API process's memory while it reads a CSV manifest in `POST /v1/batches`.
 * Each manifest goes to an API process of its own (VmHWM is a lifetime peak), after a warm-up
 * batch; the growth is the peak (VmRSS every 25 ms, and VmHWM) above the idle RSS.
 * "Empty rows" are rows of empty fields (`,`), which a CSV parser turns into one array each.
 * The last cases are accepted: `acceptedRows` URL rows (MAX_BATCH_ITEMS raised to match),
 * which includes writing the batch to Redis and queueing every item.
 */
export function manifestMemoryScenario({
  emptyBytes,
  largeBytes,
  acceptedRows,
}: {
  emptyBytes: number;
  largeBytes: number;
  acceptedRows: number[];
}): Scenario {
  const cases: ManifestCase[] = [
    {
      label: `${round(emptyBytes / 1e6)} MB of empty rows`,
      bytes: emptyBytes,
      header: 'image_url,client_ref\r\n',
      row: () => ',\r\n',
    },
    {
      label: `${round(largeBytes / 1e6)} MB of empty rows`,
      bytes: largeBytes,
      header: 'image_url,client_ref\r\n',
      row: () => ',\r\n',
    },
    {
      label: `${round(largeBytes / 1e6)} MB of URL rows`,
      bytes: largeBytes,
      header: 'image_url,client_ref,colour,size\r\n',
      row: urlRow,
    },
    ...acceptedRows.map((rows) => ({
      label: `${rows.toLocaleString('en-US')} URL rows, accepted`,
      bytes: Infinity,
      header: 'image_url,client_ref,colour,size\r\n',
      row: urlRow,
      rows,
      env: { MAX_BATCH_ITEMS: String(rows) },
      context: rows > 10_000,
    })),
  ];
  return {
    name: 'manifest-memory',
    async run(context) {
      const stack = await startBenchStack();
      const samples: Sample[] = [];
      try {
        for (const manifestCase of cases) {
          // The refused manifests are measured against the limit they always were (10,000 rows).
          const api = await stack.startApi(manifestCase.env ?? { MAX_BATCH_ITEMS: '10000' });
          const pid = api.process.pid;
          await postManifest(
            api.url,
            stack.apiKey,
            {
              label: 'warm-up',
              bytes: 0,
              header: 'image_url,client_ref\r\n',
              row: (i) => `https://cdn.example.com/w/${i}.jpg,w-${i}\r\n`,
            },
            20,
          );
          await sleep(1_000);
          const idle = readMemory(pid);
          const sampler = sampleRss(pid);
          const status = await postManifest(api.url, stack.apiKey, manifestCase, manifestCase.rows);
          const peak = sampler.stop();
          const growth = (Math.max(peak.peakRss, peak.hwm) - idle.rss) / MB;
          context.log(
            `  ${manifestCase.label}: answered ${status}, idle RSS ${round(idle.rss / MB)} MB, peak +${round(growth)} MB`,
          );
          const name = `8 manifest memory: API peak RSS growth, ${manifestCase.label}${manifestCase.context ? ' (context)' : ''}`;
          samples.push(
            manifestCase.context
              ? { name, value: round(growth, 1), unit: 'MB' }
              : { name, value: round(growth, 1), unit: 'MB', target: '≤ 200', meets: (value: number) => value <= 200 },
          );
          api.process.kill('SIGTERM');
          await api.process.exited;
        }
        return samples;
      } finally {
        await stack.close();
      }
    },
  };
}

/**
 * POSTs a manifest of about `bytes` bytes (or `rows` rows) as multipart, streamed; the
 * status the API answered. A server that answers before the body ends is not sent the rest.
 */
async function postManifest(
  apiUrl: string,
  apiKey: string,
  { bytes, header, row }: ManifestCase,
  rows = Infinity,
): Promise<string> {
  const boundary = `----cutoutbench${Math.random().toString(16).slice(2)}`;
  const answered = new AbortController();
  async function* body(): AsyncGenerator<Buffer> {
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="manifest"; filename="manifest.csv"\r\nContent-Type: text/csv\r\n\r\n${header}`,
    );
    let sent = header.length;
    let slice: string[] = [];
    let sliceBytes = 0;
    for (let index = 0; index < rows && (rows !== Infinity || sent + row(index).length <= bytes); index++) {
      const line = row(index);
      slice.push(line);
      sliceBytes += line.length;
      sent += line.length;
      if (sliceBytes >= SLICE) {
        if (answered.signal.aborted) return;
        yield Buffer.from(slice.join(''));
        slice = [];
        sliceBytes = 0;
      }
    }
    yield Buffer.from(`${slice.join('')}\r\n--${boundary}--\r\n`);
  }
  try {
    const response = await request(`${apiUrl}/v1/batches`, {
      method: 'POST',
      body: Readable.from(body(), { objectMode: false }),
      headers: { 'x-api-key': apiKey, 'content-type': `multipart/form-data; boundary=${boundary}` },
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
    answered.abort();
    const text = await response.body.text();
    return `${response.statusCode} ${/"code":"([a-z_]+)"/.exec(text)?.[1] ?? ''}`.trim();
  } catch (error) {
    // The API may close the connection while the rest of the body is still being sent.
    return `connection closed (${(error as { code?: string }).code ?? 'error'})`;
  }
}
