import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { MB, readMemory, sampleRss } from '../lib/proc.ts';
import { startBenchStack } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Scenario } from '../lib/types.ts';

/** A JSON batch body of about `bytes` (URL items with metadata), as a stranger might send it. */
function batchBody(bytes: number): string {
  const item = JSON.stringify({ image_url: 'https://images.example.com/p.jpg', metadata: { note: 'x'.repeat(400) } });
  return `{"items":[${Array(Math.ceil(bytes / (item.length + 1)))
    .fill(item)
    .join(',')}]}`;
}

/**
 * Scenario 4 (edge): what requests without a key cost the API. Concurrent large JSON
 * bodies with no X-API-KEY to POST /v1/batches, whose body limit is the largest; each must
 * get its 401 without the body being read, so RSS should stay at the connections' cost.
 */
export function edgeMemoryScenario({
  concurrent,
  bodyBytes,
  rounds,
}: {
  concurrent: number;
  bodyBytes: number;
  rounds: number;
}): Scenario {
  return {
    name: 'edge memory',
    async run(context) {
      const stack = await startBenchStack();
      try {
        const api = await stack.startApi({ AUTH_FAILURE_LIMIT_PER_MINUTE: '1000000' });
        const pid = api.process.pid;
        const body = batchBody(bodyBytes);
        const send = async () => {
          const response = await request(`${api.url}/v1/batches`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          }).catch(() => null);
          // The server answers before the body is sent and may close the connection: either is a refusal.
          if (response) await response.body.dump();
          return response?.statusCode ?? 401;
        };
        await send();
        await sleep(1_000);
        const idle = readMemory(pid);
        const sampler = sampleRss(pid);
        const statuses: number[] = [];
        for (let round = 0; round < rounds; round++)
          statuses.push(...(await Promise.all(Array.from({ length: concurrent }, send))));
        const peak = sampler.stop();
        const growth = (Math.max(peak.peakRss, peak.hwm > idle.hwm ? peak.hwm : 0) - idle.rss) / MB;
        const refused = statuses.filter((status) => status === 401).length;
        context.log(
          `  ${rounds} × ${concurrent} keyless ${round(bodyBytes / MB)} MB bodies: ${refused}/${statuses.length} answered 401, peak RSS +${round(growth)} MB`,
        );
        return [
          {
            name: `4 edge: API peak RSS growth, ${concurrent} concurrent keyless ${round(bodyBytes / MB, 1)} MB batch bodies`,
            value: round(growth, 1),
            unit: 'MB',
            target: '≤ 64',
            meets: (value) => value <= 64,
          },
        ];
      } finally {
        await stack.close();
      }
    },
  };
}
