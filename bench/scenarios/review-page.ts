import { request } from 'undici';
import { launchChromium } from '../../test/helpers/browser.ts';
import { startBenchStack } from '../lib/stack.ts';
import { median, round } from '../lib/stats.ts';
import type { Sample, Scenario } from '../lib/types.ts';

const LOADS = 5;

/**
 * Scenario 7: the review page stays usable at catalog scale. A batch of `items` URL items
 * (no worker runs: every item stays queued, so the grid is as full as it gets) is opened in
 * Chromium; time to a rendered first page and the page's DOM size are measured against the
 * same page for a 48-item batch in the same run, and the last page's data call against the
 * first's. Both ratios should stay near 1: nothing the browser does grows with the batch.
 */
export function reviewPageScenario(items: number): Scenario {
  return {
    name: 'review page at scale',
    async run(context) {
      const stack = await startBenchStack({ fixedResult: true });
      const browser = await launchChromium();
      try {
        const api = await stack.startApi();
        const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
          const response = await request(`${api.url}${path}`, {
            method,
            headers: {
              'x-api-key': stack.apiKey,
              ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          const text = await response.body.text();
          if (response.statusCode >= 300)
            throw new Error(`${method} ${path} answered ${response.statusCode}: ${text.slice(0, 200)}`);
          return JSON.parse(text) as Record<string, any>;
        };
        const reviewPath = async (size: number) => {
          const batch = await call('POST', '/v1/batches', {
            items: Array.from({ length: size }, (_, i) => ({
              image_url: `http://127.0.0.1:9/p/${i}.png`,
              client_ref: `SKU-${i}`,
            })),
          });
          return new URL(String((await call('POST', `/v1/batches/${batch.id}/review-link`)).url)).pathname;
        };
        const [small, large] = [await reviewPath(48), await reviewPath(items)];

        const openTimes = async (path: string) => {
          const times: number[] = [];
          let nodes = 0;
          for (let i = 0; i < LOADS; i++) {
            const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
            const started = performance.now();
            await page.goto(`${api.url}${path}`);
            await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
            times.push(performance.now() - started);
            nodes = await page.evaluate(
              () =>
                (
                  globalThis as unknown as { document: { getElementsByTagName(tag: string): { length: number } } }
                ).document.getElementsByTagName('*').length,
            );
            await page.close();
          }
          return { ms: median(times), nodes };
        };
        const smallPage = await openTimes(small);
        const largePage = await openTimes(large);
        context.log(
          `  review page ready: ${round(largePage.ms)} ms at ${items} items (${largePage.nodes} elements), ${round(smallPage.ms)} ms at 48 (${smallPage.nodes})`,
        );

        const dataTimes = async (query: string) => {
          const times: number[] = [];
          for (let i = 0; i < 20; i++) {
            const started = performance.now();
            const response = await request(`${api.url}${large}/items?${query}`);
            await response.body.dump();
            times.push(performance.now() - started);
          }
          return median(times);
        };
        const lastCursor = Buffer.from(`o${items - 48}`).toString('base64url');
        const [first, last] = [await dataTimes('limit=48'), await dataTimes(`limit=48&cursor=${lastCursor}`)];
        context.log(`  items page: first ${round(first)} ms, last ${round(last)} ms`);

        const label = items.toLocaleString('en-US');
        return [
          {
            name: `7 review page: ready at ${label} items (baseline: 48 items)`,
            value: round(largePage.ms),
            baseline: round(smallPage.ms),
            unit: 'ms',
            target: '≤ 1.5 × baseline',
            meets: (value, baseline) => baseline !== undefined && value <= 1.5 * baseline,
          },
          {
            name: `7 review page: DOM elements at ${label} items (baseline: 48 items)`,
            value: largePage.nodes,
            baseline: smallPage.nodes,
            unit: 'elements',
            target: '≤ 1.1 × baseline',
            meets: (value, baseline) => baseline !== undefined && value <= 1.1 * baseline,
          },
          {
            name: `7 review page: last page of ${label} items (baseline: first page)`,
            value: round(last),
            baseline: round(first),
            unit: 'ms',
            target: '≤ 2 × baseline',
            meets: (value, baseline) => baseline !== undefined && value <= 2 * baseline,
          },
        ] satisfies Sample[];
      } finally {
        await browser.close();
        await stack.close();
      }
    },
  };
}
