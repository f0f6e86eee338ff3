import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { signReviewToken } from '../../apps/api/src/review/tokens.ts';
import { startImageServer, postBatch, batchEnded, type ImageServer } from '../helpers/batches.ts';
import { artifactPath, launchChromium } from '../helpers/browser.ts';
import { setFaults, type Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { reviewBatch, reviewLink } from '../helpers/reviews.ts';
import { callApi } from '../helpers/webhooks.ts';

const SECRET = 'browser-review-secret-0123456789abcdefgh';
/** The machine may be busy with other suites: give the page and the API time. */
const POLL = { timeout: 15_000 };

// These run inside the page (page.evaluate); the project compiles without the DOM library.
declare const document: any;
declare const getComputedStyle: any;
declare const NodeFilter: any;
declare const window: any;
type Element = any;

/** WCAG contrast of every piece of text on the page against the background it sits on. */
function lowContrastTexts(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const rgb = (value: string) => (value.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r, g, b]: number[]) => {
      const [R, G, B] = [r!, g!, b!].map((c) =>
        c / 255 <= 0.03928 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4,
      );
      return 0.2126 * R! + 0.7152 * G! + 0.0722 * B!;
    };
    const background = (element: Element | null): number[] => {
      for (let node = element; node; node = node.parentElement) {
        const color = rgb(getComputedStyle(node).backgroundColor);
        if (color.length === 3 || (color.length === 4 && color[3]! > 0.5)) return color.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const problems: string[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const element = node.parentElement!;
      const style = getComputedStyle(element);
      if (
        !node.textContent?.trim() ||
        style.visibility === 'hidden' ||
        element.closest('[hidden]') ||
        element.getClientRects().length === 0
      )
        continue;
      const [fg, bg] = [luminance(rgb(style.color)), luminance(background(element))];
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      if (ratio < 4.5) problems.push(`${node.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
    }
    return problems;
  });
}

/** Every image in the grid decoded with real pixels (thumbnails, not broken icons). */
const allImagesLoaded = (page: Page) =>
  page.waitForFunction(
    () => {
      const images = [...document.querySelectorAll('[data-testid="card"] img')];
      return images.length > 0 && images.every((image) => image.complete && image.naturalWidth > 0);
    },
    undefined,
    { timeout: 15_000 },
  );

describe('the review page, in Chromium', () => {
  let system: TestSystem;
  let images: ImageServer;
  let browser: Browser;
  let batch: Json;
  let pageUrl: string;

  beforeAll(async () => {
    system = await startSystem({
      env: { WORKER_CONCURRENCY: '4', REVIEW_LINK_SECRET: SECRET, BYBYBG_MAX_ATTEMPTS: '1' },
    });
    images = await startImageServer(60_000);
    browser = await launchChromium();
    batch = await reviewBatch(system, images, { good: 17, plain: 3 });
    pageUrl = `${system.apiUrl}${(await reviewLink(system, 'batches', batch.id)).path}`;
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await images?.close();
    await system?.close();
  });

  /** Every request any page made: the page must need nothing but the API that served it. */
  const requested: string[] = [];

  async function openPage(url = pageUrl): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 2600 } });
    page.on('pageerror', (error) => {
      throw error;
    });
    page.on('request', (sent) => void requested.push(sent.url()));
    await page.goto(url);
    return page;
  }

  it('shows a finished 20-item batch: 20 cards with original and cutout loaded, progress complete, and saves a screenshot', async () => {
    const page = await openPage();
    await page.waitForSelector('body[data-state="ready"]');
    await expect.poll(() => page.getByTestId('card').count(), POLL).toBe(20);
    await allImagesLoaded(page);
    const succeeded = page.locator('[data-testid="card"][data-status="succeeded"]');
    expect(await succeeded.count()).toBe(17);
    for (const card of await succeeded.all()) {
      expect(await card.getByTestId('img-original').count()).toBe(1);
      expect(await card.getByTestId('img-cutout').count()).toBe(1);
      expect(await card.getByTestId('result-link').getAttribute('href')).toMatch(/\/items\/job_\w+\/result$/);
    }
    // A failed item still shows its original, with the reason instead of a cutout.
    const failed = page.locator('[data-testid="card"][data-status="failed"]');
    expect(await failed.count()).toBe(3);
    expect(await failed.first().getByTestId('img-original').count()).toBe(1);
    expect(await failed.first().getByTestId('card-error').textContent()).toContain('upstream_rejected');

    expect(await page.getByTestId('progress-text').textContent()).toMatch(/20 of 20/);
    expect(
      await page.locator('[data-testid="progress"] progress').evaluate((bar: any) => [bar.value, bar.max]),
    ).toEqual([20, 20]);
    expect(await page.getByTestId('manifest-csv').getAttribute('href')).toMatch(/\/manifest\?format=csv$/);

    const alts = await page
      .locator('[data-testid="card"] img')
      .evaluateAll((list) => list.map((image) => (image as any).alt));
    expect(alts.every((alt) => /^(Original|Cutout): /.test(alt))).toBe(true);
    expect(await lowContrastTexts(page)).toEqual([]);

    // "Download result" saves the full-size PNG, named after the item, and the page stays.
    const first = succeeded.first();
    const [download] = await Promise.all([page.waitForEvent('download'), first.getByTestId('result-link').click()]);
    expect(download.suggestedFilename()).toBe(`${await first.locator('h3').textContent()}.png`);
    expect(page.url()).toBe(pageUrl);

    const screenshot = artifactPath('review-page.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
    await page.close();
  });

  it('pages through a batch larger than a page, and loads nothing from anywhere but the API and S3', async () => {
    const large = await reviewBatch(system, images, { good: 100, first: 1_000 });
    const link = await reviewLink(system, 'batches', large.id);
    const page = await openPage(`${system.apiUrl}${link.path}/`);
    await page.waitForSelector('body[data-state="ready"]');
    const refs = () => page.locator('[data-testid="card"] h3').allTextContents();
    expect(await refs()).toEqual(Array.from({ length: 48 }, (_, i) => `sku-${1_000 + i}`));
    expect(await page.getByTestId('page-status').textContent()).toBe('Page 1 of 3');
    expect(await page.getByTestId('page-prev').isDisabled()).toBe(true);
    await page.getByTestId('page-next').click();
    await expect.poll(refs, POLL).toEqual(Array.from({ length: 48 }, (_, i) => `sku-${1_048 + i}`));
    await page.getByTestId('page-next').click();
    await expect.poll(refs, POLL).toEqual(Array.from({ length: 4 }, (_, i) => `sku-${1_096 + i}`));
    expect(await page.getByTestId('page-status').textContent()).toBe('Page 3 of 3');
    expect(await page.getByTestId('page-next').isDisabled()).toBe(true);
    await page.getByTestId('page-prev').click();
    await expect.poll(refs, POLL).toEqual(Array.from({ length: 48 }, (_, i) => `sku-${1_048 + i}`));
    await page.close();

    expect(requested.length).toBeGreaterThan(100);
    // The page's own files and data come from the API; only a result download goes to S3 (a presigned URL).
    const s3 = system.config.s3.publicEndpoint ?? system.config.s3.endpoint!;
    expect(requested.filter((url) => !url.startsWith(`${system.apiUrl}/review/`) && !url.startsWith(s3))).toEqual([]);
  }, 60_000);

  it('filters to the failed items and back', async () => {
    const page = await openPage();
    await page.waitForSelector('body[data-state="ready"]');
    await page.getByTestId('filter-failed').click();
    await expect
      .poll(
        () =>
          page
            .locator('[data-testid="card"]')
            .evaluateAll((cards) => cards.map((card) => card.getAttribute('data-status'))),
        POLL,
      )
      .toEqual(['failed', 'failed', 'failed']);
    expect(await page.getByTestId('filter-failed').getAttribute('aria-pressed')).toBe('true');
    await page.getByTestId('filter-all').click();
    await expect.poll(() => page.getByTestId('card').count(), POLL).toBe(20);
    await page.close();
  });

  it('flags an item as wrong, and the API, the batch and the manifest see the flag', async () => {
    const page = await openPage();
    await page.waitForSelector('body[data-state="ready"]');
    const card = page.locator('[data-testid="card"][data-status="succeeded"]').first();
    const jobId = (await card.getAttribute('data-job-id'))!;
    await card.getByTestId('flag-button').click();
    await expect
      .poll(() => page.locator(`[data-job-id="${jobId}"]`).getAttribute('data-review'), POLL)
      .toBe('rejected');
    expect(await page.locator(`[data-job-id="${jobId}"]`).getByTestId('flag-button').getAttribute('aria-pressed')).toBe(
      'true',
    );

    expect((await callApi(system, 'GET', `/v1/jobs/${jobId}`)).body.review).toMatchObject({ verdict: 'rejected' });
    expect((await callApi(system, 'GET', `/v1/batches/${batch.id}`)).body.review).toEqual({ rejected: 1 });
    const manifest = await fetch(`${system.apiUrl}/v1/batches/${batch.id}/results`, {
      headers: { 'x-api-key': system.apiKey },
    });
    const rows = (await manifest.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(rows.filter((row) => row.review === 'rejected').map((row) => row.job_id)).toEqual([jobId]);

    // The reviewer says what is wrong; the API has the note.
    const flaggedCard = page.locator(`[data-job-id="${jobId}"]`);
    await flaggedCard.getByLabel('What is wrong? (optional)').fill('strap cut off on the left');
    await flaggedCard.getByTestId('note-save').click();
    await expect
      .poll(async () => (await callApi(system, 'GET', `/v1/jobs/${jobId}`)).body.review?.note, POLL)
      .toBe('strap cut off on the left');
    expect(await page.locator(`[data-job-id="${jobId}"]`).getByTestId('note-input').inputValue()).toBe(
      'strap cut off on the left',
    );
    expect(await lowContrastTexts(page)).toEqual([]);

    await page.getByTestId('filter-rejected').click();
    await expect
      .poll(
        () =>
          page.locator('[data-testid="card"]').evaluateAll((cards) => cards.map((c) => c.getAttribute('data-job-id'))),
        POLL,
      )
      .toEqual([jobId]);

    // Undo from the page clears it everywhere.
    await page.getByTestId('flag-button').click();
    await expect.poll(async () => (await callApi(system, 'GET', `/v1/jobs/${jobId}`)).body.review, POLL).toBeNull();
    await page.close();
  });

  it('works from the keyboard: skip link first, filters and flags reachable with Tab', async () => {
    const page = await openPage();
    await page.waitForSelector('body[data-state="ready"]');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Skip to items');
    const reach = async (testId: string) => {
      for (let i = 0; i < 300; i += 1) {
        if ((await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))) === testId) return true;
        await page.keyboard.press('Tab');
      }
      return false;
    };
    expect(await reach('filter-failed')).toBe(true);
    expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).not.toBe('none');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('card').count(), POLL).toBe(3);
    await page.getByTestId('filter-succeeded').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('card').count(), POLL).toBe(17);
    expect(await reach('flag-button')).toBe(true);
    const jobId = await page.evaluate(() =>
      document.activeElement!.closest('[data-testid="card"]')!.getAttribute('data-job-id'),
    );
    await page.keyboard.press('Space');
    await expect
      .poll(async () => (await callApi(system, 'GET', `/v1/jobs/${jobId}`)).body.review?.verdict, POLL)
      .toBe('rejected');
    // Focus stays on the (re-rendered) button, so the same key undoes the flag.
    await expect
      .poll(
        () =>
          page.evaluate(() =>
            ['data-testid', 'aria-pressed', 'aria-disabled'].map((name) => document.activeElement?.getAttribute(name)),
          ),
        POLL,
      )
      .toEqual(['flag-button', 'true', null]);
    await page.keyboard.press('Space');
    await expect.poll(async () => (await callApi(system, 'GET', `/v1/jobs/${jobId}`)).body.review, POLL).toBeNull();
    await page.close();
  });

  it('updates progress live while a batch runs, without reloading', async () => {
    await setFaults(system, { latencyMs: 400 });
    try {
      const created = await postBatch(system, {
        items: Array.from({ length: 24 }, (_, i) => ({ image_url: images.url(500 + i), client_ref: `live-${i}` })),
      });
      const live = await reviewLink(system, 'batches', created.body.id);
      const page = await openPage(`${system.apiUrl}${live.path}`);
      await page.waitForSelector('body[data-state="ready"]');
      await page.evaluate(() => Object.assign(window, { sameDocument: true }));
      const first = await page.getByTestId('progress-text').textContent();
      const seen = new Set([first]);
      await expect
        .poll(
          async () => {
            seen.add(await page.getByTestId('progress-text').textContent());
            return page.getByTestId('progress-text').textContent();
          },
          { timeout: 30_000, interval: 100 },
        )
        .toMatch(/24 of 24/);
      expect(first).not.toMatch(/24 of 24/);
      expect(seen.size).toBeGreaterThan(2);
      // Updates came over Server-Sent Events, not by reloading or polling.
      expect(requested.filter((url) => url === `${system.apiUrl}${live.path}/events`)).toHaveLength(1);
      expect(requested.filter((url) => url === `${system.apiUrl}${live.path}/data`).length).toBeLessThanOrEqual(2);
      // While it ran, the page said how long was left.
      expect([...seen].some((text) => / left$/.test(text ?? ''))).toBe(true);
      expect(await page.evaluate(() => window.sameDocument)).toBe(true);
      // The grid caught up too: every card shows its cutout.
      await expect
        .poll(() => page.locator('[data-testid="card"][data-status="succeeded"]').count(), { timeout: 10_000 })
        .toBe(24);
      await batchEnded(system, created.body.id);
      await page.close();
    } finally {
      await setFaults(system, { latencyMs: 0 });
    }
  }, 60_000);

  it('shows an error page and no data for a tampered or expired link, or an API key in the URL', async () => {
    const [subject, issued, expiry, signature] = new URL(pageUrl).pathname.split('/')[2]!.split('.') as [
      string,
      string,
      string,
      string,
    ];
    const tampered = `${subject}.${issued}.${(parseInt(expiry, 36) + 3600).toString(36)}.${signature}`;
    const expired = signReviewToken(SECRET, { kind: 'batch', id: batch.id }, Date.now() - 1_000);
    for (const [path, status] of [
      [`/review/${tampered}`, 401],
      [`/review/${expired}`, 410],
      [`/review/${system.apiKey}`, 400],
    ] as const) {
      const page = await browser.newPage();
      const response = await page.goto(`${system.apiUrl}${path}`);
      expect(response?.status(), path).toBe(status);
      expect(await page.getByTestId('error-page').isVisible()).toBe(true);
      expect(await page.locator('body').getAttribute('data-state')).toBe('error');
      // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText, the text a reader sees
      const text = await page.locator('body').innerText();
      expect(text).not.toContain('sku-');
      expect(text).not.toContain(batch.id);
      expect(await page.getByTestId('card').count()).toBe(0);
      await page.close();
    }
  });
});
