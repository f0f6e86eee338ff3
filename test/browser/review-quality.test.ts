import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { FormData, request } from 'undici';
import { productImage, type ProductShot } from '../helpers/images.ts';
import { artifactPath, launchChromium } from '../helpers/browser.ts';
import { batchEnded } from '../helpers/batches.ts';
import type { Json } from '../helpers/jobs.ts';
import { reviewLink } from '../helpers/reviews.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';

const POLL = { timeout: 15_000 };
const GOOD: ProductShot = { width: 600, height: 450, object: { left: 200, top: 120, width: 200, height: 200 } };
const TOUCHING: ProductShot = { width: 400, height: 300, object: { left: 100, top: 150, width: 200, height: 150 } };

describe('auto-flagged cutouts and renditions on the review page, in Chromium', () => {
  let system: TestSystem;
  let browser: Browser;
  let pageUrl: string;

  beforeAll(async () => {
    system = await startSystem();
    browser = await launchChromium();
    const form = new FormData();
    form.append(
      'renditions',
      JSON.stringify([
        { name: 'amazon', preset: 'marketplace' },
        { name: 'web', preset: 'web' },
      ]),
    );
    for (const [name, shot, variant] of [
      ['good.png', GOOD, 1],
      ['touching.png', TOUCHING, 2],
      ['good-2.png', GOOD, 3],
    ] as const) {
      form.append('file', new Blob([await productImage('png', shot, 80_000 + variant)], { type: 'image/png' }), name);
    }
    const created = await request(`${system.apiUrl}/v1/batches`, {
      method: 'POST',
      body: form,
      headers: { 'x-api-key': system.apiKey },
    });
    const batch = (await created.body.json()) as Json;
    await batchEnded(system, batch.id);
    pageUrl = `${system.apiUrl}${(await reviewLink(system, 'batches', batch.id)).path}`;
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await system?.close();
  });

  it('filters the auto-flagged items, says what each flag means, and links each rendition', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
    page.on('pageerror', (error) => {
      throw error;
    });
    await page.goto(pageUrl);
    await page.waitForSelector('body[data-state="ready"]');
    await expect.poll(() => page.getByTestId('card').count(), POLL).toBe(3);
    expect(await page.getByTestId('quality-flags').count()).toBe(1);
    expect((await page.getByTestId('filter-quality-flagged').textContent())?.trim()).toBe('Auto-flagged 1');

    await page.getByTestId('filter-quality-flagged').click();
    await expect.poll(() => page.locator('[data-testid="card"] h3').allTextContents(), POLL).toEqual(['touching.png']);
    const card = page.getByTestId('card');
    expect(await card.locator('[data-testid="quality-flags"] li').allTextContents()).toEqual([
      'The product touches the edge of the frame: part of it may be cut off',
    ]);
    expect(await card.getByTestId('rendition-link').allTextContents()).toEqual(['amazon', 'web']);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      card.getByTestId('rendition-link').first().click(),
    ]);
    expect(download.suggestedFilename()).toBe('touching.png-amazon.jpg');
    await page.screenshot({ path: artifactPath('review-page-auto-flagged.png'), fullPage: true });
    await page.close();
  });
});
