import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { distinctPhotos } from '../lib/images.ts';
import { startBenchStack } from '../lib/stack.ts';
import { round } from '../lib/stats.ts';
import type { Sample, Scenario } from '../lib/types.ts';

/**
 * Scenario 5 (first half): how long `POST /v1/batches` takes to answer for a JSON batch of
 * `items` image URLs (served from loopback; no worker runs, so only creation is timed).
 * When the API has no batches route yet, the scenario says so instead of a number.
 * The second half (Redis bytes per finished job) is measured in scenario 2's run.
 */
export function bulkScenario(items: number): Scenario {
  return {
    name: 'bulk batch creation',
    async run(context) {
      const [photo] = await distinctPhotos(1);
      const images = createServer((_request, response) =>
        response.writeHead(200, { 'content-type': 'image/png' }).end(photo),
      );
      await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
      const imageBase = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
      const stack = await startBenchStack({ fixedResult: true });
      try {
        const api = await stack.startApi();
        const body = JSON.stringify({
          webhook_url: stack.receiver.url,
          items: Array.from({ length: items }, (_, index) => ({
            image_url: `${imageBase}/p/${index}.png`,
            metadata: { sku: `SKU-${index}` },
          })),
        });
        const started = performance.now();
        const response = await request(`${api.url}/v1/batches`, {
          method: 'POST',
          body,
          headers: { 'x-api-key': stack.apiKey, 'content-type': 'application/json' },
        });
        const text = await response.body.text();
        const ms = performance.now() - started;
        const name = `5 bulk: POST /v1/batches with ${items.toLocaleString('en-US')} items, answer time`;
        if (response.statusCode === 404 || response.statusCode === 405) {
          context.log(`  POST /v1/batches answered ${response.statusCode}: not measured (no batches route yet)`);
          return [{ name: `${name} (not measured: no batches route)`, value: Number.NaN, unit: 's', target: '≤ 3' }];
        }
        if (response.statusCode >= 300)
          throw new Error(`POST /v1/batches answered ${response.statusCode}: ${text.slice(0, 300)}`);
        context.log(`  POST /v1/batches (${items} items) answered ${response.statusCode} in ${round(ms)} ms`);
        return [
          { name, value: round(ms / 1000, 3), unit: 's', target: '≤ 3', meets: (value) => value <= 3 },
        ] satisfies Sample[];
      } finally {
        await stack.close();
        images.closeAllConnections();
        await new Promise((resolve) => images.close(resolve));
      }
    },
  };
}
