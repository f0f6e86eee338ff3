import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import sharp from 'sharp';
import { parseCsv } from '../../apps/api/src/intake/csv.ts';
import { signReviewToken } from '../../apps/api/src/review/tokens.ts';
import { batchEnded, startImageServer, manifest, type ImageServer } from '../helpers/batches.ts';
import type { Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { fetchPath, reviewBatch, reviewLink } from '../helpers/reviews.ts';
import { callApi } from '../helpers/webhooks.ts';

const SECRET = 'review-secret-for-tests-0123456789abcdef';

describe('review links and the data behind the review page', () => {
  let system: TestSystem;
  let images: ImageServer;
  let batch: Json;
  let link: Awaited<ReturnType<typeof reviewLink>>;

  beforeAll(async () => {
    // Reruns with other options send `size`, which an operator must allow.
    system = await startSystem({
      env: {
        WORKER_CONCURRENCY: '8',
        REVIEW_LINK_SECRET: SECRET,
        BYBYBG_MAX_ATTEMPTS: '1',
        BYBYBG_ALLOWED_OPTIONS: 'size',
      },
    });
    images = await startImageServer(40_000);
    batch = await reviewBatch(system, images, { good: 17, missing: 3 });
    link = await reviewLink(system, 'batches', batch.id);
  }, 120_000);
  afterAll(async () => {
    await images?.close();
    await system?.close();
  });

  it('creates a signed link that expires after 24 h by default, or after expires_in', async () => {
    expect(link.url).toBe(`${system.config.api.publicBaseUrl}/review/${link.token}`);
    expect(link.token).toMatch(/^rvw_b[0-9A-Za-z]{24}\.[0-9a-z]+\.[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
    expect(link.body).toMatchObject({ object: 'review_link', batch_id: batch.id });
    expect(Math.abs(Date.parse(link.body.expires_at) - (Date.now() + 86_400_000))).toBeLessThan(60_000);
    const short = await reviewLink(system, 'batches', batch.id, { expires_in: 600 });
    expect(Math.abs(Date.parse(short.body.expires_at) - (Date.now() + 600_000))).toBeLessThan(60_000);
    for (const expires_in of [10, 40 * 86_400, 'soon', 1.5]) {
      const refused = await callApi(system, 'POST', `/v1/batches/${batch.id}/review-link`, { body: { expires_in } });
      expect(refused.status, String(expires_in)).toBe(400);
    }
    // Links are created with the tenant's own key and only for its own batches and jobs.
    expect(
      (await callApi(system, 'POST', `/v1/batches/${batch.id}/review-link`, { key: system.otherApiKey })).status,
    ).toBe(404);
    expect((await callApi(system, 'POST', '/v1/batches/batch_000000000000000000000000/review-link')).status).toBe(404);
  });

  it('serves the page with a strict content security policy and no caching', async () => {
    const page = await fetchPath(system, link.path);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).toContain('/review/assets/review.js');
    expect(page.text).not.toContain(batch.id);
    for (const asset of ['review.js', 'review.css'])
      expect((await fetchPath(system, `/review/assets/${asset}`)).status).toBe(200);
    expect((await fetchPath(system, '/review/assets/index.html')).status).toBe(404);
  });

  it('gives the batch progress and pages of items, filtered by outcome', async () => {
    const data = (await fetchPath(system, `${link.path}/data`)).json();
    expect(data).toMatchObject({
      object: 'review',
      kind: 'batch',
      batch: {
        id: batch.id,
        status: 'completed',
        counts: { total: 20, succeeded: 17, failed: 3 },
        review: { rejected: 0 },
      },
    });
    expect(data.manifest.csv).toBe(`${link.path}/manifest?format=csv`);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await fetchPath(system, `${link.path}/items?limit=6${cursor ? `&cursor=${cursor}` : ''}`)).json();
      seen.push(...page.data.map((item: Json) => item.client_ref));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...Array.from({ length: 17 }, (_, i) => `sku-${i}`), 'missing-0', 'missing-1', 'missing-2']);

    const failed = (await fetchPath(system, `${link.path}/items?filter=failed`)).json().data as Json[];
    expect(failed).toHaveLength(3);
    for (const item of failed) {
      expect(item.error.code).toBe('image_url_unreachable');
      expect(item.result_url).toBeNull();
      expect(item.cutout_thumb_url).toBeNull();
    }
    const succeeded = (await fetchPath(system, `${link.path}/items?filter=succeeded&limit=100`)).json().data as Json[];
    expect(succeeded).toHaveLength(17);
    expect(succeeded.every((item) => item.original_thumb_url && item.cutout_thumb_url && item.result_url)).toBe(true);

    expect((await fetchPath(system, `${link.path}/items?filter=everything`)).status).toBe(400);
    expect((await fetchPath(system, `${link.path}/items?cursor=nonsense`)).status).toBe(400);
  });

  it('serves thumbnails and result downloads of its own batch only', async () => {
    const [item] = (await fetchPath(system, `${link.path}/items?filter=succeeded&limit=1`)).json().data as Json[];
    for (const url of [item!.original_thumb_url, item!.cutout_thumb_url]) {
      const response = await request(`${system.apiUrl}${url}`);
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe('image/webp');
      const meta = await sharp(Buffer.from(await response.body.arrayBuffer())).metadata();
      expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(320);
    }
    const download = await request(`${system.apiUrl}${item!.result_url}`);
    await download.body.dump();
    expect(download.statusCode).toBe(302);
    const png = await request(String(download.headers.location));
    expect(png.statusCode).toBe(200);
    // Served as an attachment named after the item, so the page's link downloads instead of navigating away.
    expect(png.headers['content-disposition']).toBe(`attachment; filename="${item!.client_ref}.png"`);
    expect((await sharp(Buffer.from(await png.body.arrayBuffer())).metadata()).hasAlpha).toBe(true);

    // A thumbnail gone from S3 (lifecycle rules) is a 404, so the page shows "No preview".
    const last = ((await fetchPath(system, `${link.path}/items?filter=succeeded&limit=100`)).json().data as Json[]).at(
      -1,
    )!;
    await system.services.storage.delete((await system.services.jobs.get(last.id))!.originalThumbKey!);
    expect((await fetchPath(system, last.original_thumb_url)).status).toBe(404);

    // A job of another batch (same tenant) is not reachable through this link.
    const other = await reviewBatch(system, images, { good: 1, missing: 0, first: 900 });
    const [outsider] = (await callApi(system, 'GET', `/v1/batches/${other.id}/jobs`)).body.data as Json[];
    for (const suffix of ['thumbs/original', 'thumbs/cutout', 'result']) {
      expect((await fetchPath(system, `${link.path}/items/${outsider!.id}/${suffix}`)).status).toBe(404);
    }
    expect(
      (
        await fetchPath(system, `${link.path}/items/${outsider!.id}/review`, {
          method: 'PUT',
          body: { verdict: 'rejected' },
        })
      ).status,
    ).toBe(404);
  });

  it('records a flag from the page in the job, the batch, its job list and both manifests, and clears it', async () => {
    const [item] = (await fetchPath(system, `${link.path}/items?filter=succeeded&limit=1`)).json().data as Json[];
    const flagged = await fetchPath(system, `${link.path}/items/${item!.id}/review`, {
      method: 'PUT',
      body: { verdict: 'rejected', note: 'shadow left under the shoe' },
    });
    expect(flagged.status).toBe(200);
    expect(flagged.json().review).toMatchObject({ verdict: 'rejected', note: 'shadow left under the shoe' });

    expect((await callApi(system, 'GET', `/v1/jobs/${item!.id}`)).body.review).toMatchObject({
      verdict: 'rejected',
      note: 'shadow left under the shoe',
    });
    expect((await callApi(system, 'GET', `/v1/batches/${batch.id}`)).body.review).toEqual({ rejected: 1 });
    expect(
      (await callApi(system, 'GET', `/v1/batches/${batch.id}/jobs?review=rejected`)).body.data.map(
        (job: Json) => job.id,
      ),
    ).toEqual([item!.id]);
    expect(
      (await fetchPath(system, `${link.path}/items?filter=rejected`)).json().data.map((job: Json) => job.id),
    ).toEqual([item!.id]);

    const [header, ...rows] = parseCsv((await manifest(system, batch.id, 'csv')).text);
    const reviewColumn = header!.indexOf('review');
    expect(rows.filter((row) => row[reviewColumn] === 'rejected').map((row) => row[1])).toEqual([item!.id]);
    const pageManifest = (await fetchPath(system, `${link.path}/manifest?format=jsonl`)).text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(pageManifest.filter((row) => row.review === 'rejected').map((row) => row.job_id)).toEqual([item!.id]);

    const cleared = await fetchPath(system, `${link.path}/items/${item!.id}/review`, { method: 'DELETE' });
    expect(cleared.json().review).toBeNull();
    expect((await callApi(system, 'GET', `/v1/batches/${batch.id}`)).body.review).toEqual({ rejected: 0 });
  });

  it('refuses a flag on an item without a cutout, and bad verdicts, without changing anything', async () => {
    const [failed] = (await fetchPath(system, `${link.path}/items?filter=failed&limit=1`)).json().data as Json[];
    const refused = await fetchPath(system, `${link.path}/items/${failed!.id}/review`, {
      method: 'PUT',
      body: { verdict: 'rejected' },
    });
    expect(refused.status).toBe(409);
    expect(refused.json().error.code).toBe('not_reviewable');
    const [good] = (await fetchPath(system, `${link.path}/items?filter=succeeded&limit=1`)).json().data as Json[];
    for (const body of [
      {},
      { verdict: 'approved' },
      { verdict: 'rejected', note: 'x'.repeat(501) },
      { verdict: 'rejected', note: 7 },
    ]) {
      expect(
        (await fetchPath(system, `${link.path}/items/${good!.id}/review`, { method: 'PUT', body })).status,
        JSON.stringify(body).slice(0, 40),
      ).toBe(400);
    }
    // A form post (what a cross-site page could send without a preflight) is not accepted.
    const form = await request(`${system.apiUrl}${link.path}/items/${good!.id}/review`, {
      method: 'PUT',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'verdict=rejected',
    });
    await form.body.dump();
    expect(form.statusCode).toBe(415);
    expect((await callApi(system, 'GET', `/v1/batches/${batch.id}`)).body.review).toEqual({ rejected: 0 });
  });

  it('refuses tampered, foreign and expired links with an error page and no data', async () => {
    const [subject, issued, expiry, signature] = link.token.split('.') as [string, string, string, string];
    const later = (parseInt(expiry, 36) + 86_400 * 365).toString(36);
    const tampered = [
      `${subject}.${issued}.${later}.${signature}`,
      `${subject}.${(parseInt(issued, 36) + 60_000).toString(36)}.${expiry}.${signature}`,
      `${subject}.${issued}.${expiry}.${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`,
      `${subject.replace('rvw_b', 'rvw_j')}.${issued}.${expiry}.${signature}`,
      signReviewToken('another-secret-another-secret-0123456789', { kind: 'batch', id: batch.id }, Date.now() + 60_000),
      'rvw_nonsense',
    ];
    for (const token of tampered) {
      const page = await fetchPath(system, `/review/${token}`);
      expect(page.status, token).toBe(401);
      expect(page.text).toContain('data-testid="error-page"');
      expect(page.text).not.toContain(batch.id);
      for (const suffix of ['data', 'items', 'events', 'manifest']) {
        const response = await fetchPath(system, `/review/${token}/${suffix}`);
        expect(response.status, suffix).toBe(401);
        expect(response.json().error.code).toBe('review_link_invalid');
        expect(response.text).not.toContain('sku-');
      }
    }
    const expired = signReviewToken(SECRET, { kind: 'batch', id: batch.id }, Date.now() - 1_000);
    const page = await fetchPath(system, `/review/${expired}`);
    expect(page.status).toBe(410);
    expect(page.text).toContain('expired');
    expect(page.text).not.toContain('sku-');
    const data = await fetchPath(system, `/review/${expired}/items`);
    expect(data.status).toBe(410);
    expect(data.json().error.code).toBe('review_link_expired');
  });

  it('revokes every link to a batch issued so far; links made afterwards work', async () => {
    const [before, other] = [
      await reviewLink(system, 'batches', batch.id, { expires_in: 900 }),
      await reviewLink(system, 'batches', batch.id, { expires_in: 1800 }),
    ];
    expect((await fetchPath(system, `${before.path}/data`)).status).toBe(200);
    const revoked = await callApi(system, 'DELETE', `/v1/batches/${batch.id}/review-links`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ object: 'review_link_revocation', batch_id: batch.id });
    for (const old of [before, other]) {
      const data = await fetchPath(system, `${old.path}/data`);
      expect([data.status, data.json().error.code]).toEqual([401, 'review_link_revoked']);
      const page = await fetchPath(system, old.path);
      expect(page.status).toBe(401);
      expect(page.text).toContain('revoked');
      expect(page.text).not.toContain('sku-');
    }
    const after = await reviewLink(system, 'batches', batch.id);
    expect((await fetchPath(system, `${after.path}/data`)).status).toBe(200);
    expect(
      (await callApi(system, 'DELETE', `/v1/batches/${batch.id}/review-links`, { key: system.otherApiKey })).status,
    ).toBe(404);
    // The link the other tests use was made before: give them a fresh one.
    link = after;
  });

  it('does not accept a review link on any /v1 route', async () => {
    const document = (await fetchPath(system, '/openapi.json')).json();
    const routes = Object.entries(document.paths as Record<string, object>)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
      .filter((route) => route.includes(' /v1/'));
    expect(routes.length).toBeGreaterThanOrEqual(19);
    for (const route of routes) {
      const [method, path] = route.split(' ') as ['GET' | 'POST' | 'PUT' | 'DELETE', string];
      const concrete = path.replace('{id}', batch.id);
      const response = await callApi(system, method, concrete, { key: link.token });
      expect(response.status, route).toBe(401);
      expect(response.body.error.code, route).toBe('review_link_not_api_key');
      // Nor as a query parameter or a bearer token, where no API key is read either.
      const asQuery = await request(`${system.apiUrl}${concrete}?token=${link.token}&api_key=${link.token}`, {
        method,
        headers: { authorization: `Bearer ${link.token}` },
      });
      await asQuery.body.dump();
      expect(asQuery.statusCode, route).toBe(401);
    }
  });

  it('refuses an API key in the page URL, in the path or the query', async () => {
    for (const path of [
      `/review/${system.apiKey}`,
      `/review/${system.apiKey}/data`,
      `${link.path}?key=${system.apiKey}`,
      `${link.path}/items?api_key=${system.apiKey}`,
    ]) {
      const response = await fetchPath(system, path);
      expect(response.status, path).toBe(400);
      expect(response.text).toContain('never goes in a URL');
      expect(response.text).not.toContain('sku-');
    }
  });

  it('opens a single job, with the same flag and no batch data', async () => {
    const [job] = (await callApi(system, 'GET', `/v1/batches/${batch.id}/jobs?status=succeeded&limit=1`)).body
      .data as Json[];
    const jobLink = await reviewLink(system, 'jobs', job!.id);
    expect(jobLink.body).toMatchObject({ object: 'review_link', job_id: job!.id });
    const data = (await fetchPath(system, `${jobLink.path}/data`)).json();
    expect(data).toMatchObject({ kind: 'job', batch: null, manifest: null, job: { id: job!.id, status: 'succeeded' } });
    expect((await fetchPath(system, `${jobLink.path}/events`)).status).toBe(404);
    expect((await fetchPath(system, `${jobLink.path}/manifest`)).status).toBe(404);
    // Its batch's other items stay out of reach.
    const [sibling] = (
      await callApi(system, 'GET', `/v1/batches/${batch.id}/jobs?status=succeeded&limit=2`)
    ).body.data.slice(1) as Json[];
    expect((await fetchPath(system, `${jobLink.path}/items/${sibling!.id}/thumbs/original`)).status).toBe(404);
    expect((await fetchPath(system, `${jobLink.path}/items/${job!.id}/thumbs/original`)).status).toBe(200);
  });

  it('streams progress as Server-Sent Events and ends once the batch has ended', async () => {
    const response = await request(`${system.apiUrl}${link.path}/events`);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    const text = await response.body.text();
    const blocks = text
      .trim()
      .split('\n\n')
      .map((block) =>
        Object.fromEntries(
          block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
        ),
      );
    // The first block only tells the browser how soon to reconnect.
    expect(blocks[0]).toEqual({ retry: '1000' });
    const events = blocks.slice(1);
    expect(events.map((event) => event.event)).toEqual(['progress', 'end']);
    expect(JSON.parse(events[0]!.data!)).toMatchObject({
      id: batch.id,
      status: 'completed',
      counts: { total: 20, succeeded: 17, failed: 3 },
    });
  });

  it('reruns a job on its original: a flagged result goes back to ByByBG, an unflagged one is reused', async () => {
    const [first, second] = (await callApi(system, 'GET', `/v1/batches/${batch.id}/jobs?status=succeeded&limit=2`)).body
      .data as Json[];
    await callApi(system, 'PUT', `/v1/jobs/${first!.id}/review`, { body: { verdict: 'rejected' } });
    const rerun = await callApi(system, 'POST', `/v1/jobs/${first!.id}/rerun`, { body: { metadata: { attempt: 2 } } });
    expect(rerun.status).toBe(202);
    expect(rerun.headers.location).toBe(`${system.config.api.publicBaseUrl}/v1/jobs/${rerun.body.id}`);
    expect(rerun.body).toMatchObject({
      status: 'queued',
      rerun_of: first!.id,
      client_ref: first!.client_ref,
      metadata: { attempt: 2 },
    });
    const again = await settled(rerun.body.id);
    expect(again).toMatchObject({ status: 'succeeded', upstream_calls: 1, credits_saved: 0, review: null });

    const reused = await settled((await callApi(system, 'POST', `/v1/jobs/${second!.id}/rerun`)).body.id);
    expect(reused).toMatchObject({ status: 'succeeded', upstream_calls: 0, credits_saved: 1, rerun_of: second!.id });
    const withOptions = await settled(
      (await callApi(system, 'POST', `/v1/jobs/${second!.id}/rerun`, { body: { options: { size: 'preview' } } })).body
        .id,
    );
    expect(withOptions).toMatchObject({ status: 'succeeded', upstream_calls: 1, credits_saved: 0 });
    await callApi(system, 'DELETE', `/v1/jobs/${first!.id}/review`);
  });

  it('refuses reruns it cannot do, with the reason, and creates nothing', async () => {
    const [job] = (await callApi(system, 'GET', `/v1/batches/${batch.id}/jobs?status=succeeded&limit=1`)).body
      .data as Json[];
    const [neverFetched] = (await callApi(system, 'GET', `/v1/batches/${batch.id}/jobs?status=failed&limit=1`)).body
      .data as Json[];
    const before = (await callApi(system, 'GET', '/v1/jobs?limit=100')).body.data.length;
    const cases: [string, unknown, number, string][] = [
      [neverFetched!.id, undefined, 409, 'original_missing'],
      [job!.id, { options: { file: 'x' } }, 422, 'invalid_options'],
      [job!.id, { webhook_url: 'http://169.254.169.254/latest' }, 422, 'invalid_webhook_url'],
      [job!.id, { image_url: 'https://example.com/a.png' }, 400, 'unknown_field'],
      [job!.id, ['options'], 400, 'invalid_request'],
      ['job_000000000000000000000000', undefined, 404, 'not_found'],
    ];
    for (const [id, body, status, code] of cases) {
      const response = await callApi(system, 'POST', `/v1/jobs/${id}/rerun`, { body });
      expect([response.status, response.body.error?.code], JSON.stringify(body)).toEqual([status, code]);
    }
    expect((await callApi(system, 'POST', `/v1/jobs/${job!.id}/rerun`, { key: system.otherApiKey })).status).toBe(404);
    expect(
      (
        await callApi(system, 'PUT', `/v1/jobs/${job!.id}/review`, {
          key: system.otherApiKey,
          body: { verdict: 'rejected' },
        })
      ).status,
    ).toBe(404);
    expect((await callApi(system, 'GET', '/v1/jobs?limit=100')).body.data.length).toBe(before);
  });

  it("reruns a batch's flagged items, or its failed ones, as a new batch, once per Idempotency-Key", async () => {
    const flagged = (
      (await callApi(system, 'GET', `/v1/batches/${batch.id}/jobs?status=succeeded&limit=3`)).body.data as Json[]
    ).slice(1);
    for (const job of flagged)
      await callApi(system, 'PUT', `/v1/jobs/${job.id}/review`, { body: { verdict: 'rejected' } });
    const post = (body: unknown, key?: string) =>
      request(`${system.apiUrl}/v1/batches/${batch.id}/rerun`, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: {
          'x-api-key': system.apiKey,
          'content-type': 'application/json',
          ...(key ? { 'idempotency-key': key } : {}),
        },
      }).then(async (response) => ({
        status: response.statusCode,
        headers: response.headers,
        body: (await response.body.json()) as Json,
      }));

    const first = await post({ items: 'rejected', options: { size: 'full' } }, 'rerun-flagged-1');
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ object: 'batch', rerun_of: batch.id, counts: { total: 2 }, rejected: [] });
    const again = await post({ items: 'rejected', options: { size: 'full' } }, 'rerun-flagged-1');
    expect([again.status, again.body.id, again.headers['idempotent-replayed']]).toEqual([202, first.body.id, 'true']);
    expect((await post({ items: 'failed' }, 'rerun-flagged-1')).body.error.code).toBe('idempotency_key_reused');

    const rerun = await batchEnded(system, first.body.id);
    expect(rerun.counts).toMatchObject({ total: 2, succeeded: 2 });
    expect(rerun.upstream_calls).toBe(2);
    const jobs = (await callApi(system, 'GET', `/v1/batches/${first.body.id}/jobs`)).body.data as Json[];
    expect(jobs.map((job) => job.client_ref).sort()).toEqual(flagged.map((job) => job.client_ref).sort());
    expect(jobs.every((job) => job.batch_id === first.body.id && job.status === 'succeeded')).toBe(true);
    // Each item keeps its metadata from the first run.
    expect(jobs.map((job) => `${job.client_ref}:${job.metadata?.shelf}`).sort()).toEqual(
      flagged.map((job) => `${job.client_ref}:${job.metadata.shelf}`).sort(),
    );

    // Failed URL items that never got their original are fetched from their URL again.
    const failed = await post({ items: 'failed' });
    expect(failed.status).toBe(202);
    expect((await batchEnded(system, failed.body.id)).counts).toMatchObject({ total: 3, failed: 3 });
    const refetched = (await callApi(system, 'GET', `/v1/batches/${failed.body.id}/jobs`)).body.data as Json[];
    expect(refetched.map((job) => job.error?.code)).toEqual([
      'image_url_unreachable',
      'image_url_unreachable',
      'image_url_unreachable',
    ]);

    for (const job of flagged) await callApi(system, 'DELETE', `/v1/jobs/${job.id}/review`);
    const none = await post({ items: 'rejected' });
    expect([none.status, none.body.error.code]).toEqual([422, 'nothing_to_rerun']);
    for (const body of [{}, { items: 'all' }, { items: 'failed', colour: 'red' }, [1]]) {
      expect((await post(body)).status, JSON.stringify(body)).toBe(400);
    }
    expect((await post({ items: 'failed', options: { file: 1 } })).body.error.code).toBe('invalid_options');
    expect(
      (
        await callApi(system, 'POST', `/v1/batches/${batch.id}/rerun`, {
          key: system.otherApiKey,
          body: { items: 'failed' },
        })
      ).status,
    ).toBe(404);
  }, 60_000);

  async function settled(id: string): Promise<Json> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { body } = await callApi(system, 'GET', `/v1/jobs/${id}`);
      if (['succeeded', 'failed', 'canceled'].includes(body.status) || Date.now() > deadline) return body;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});

describe('review progress streams', () => {
  it('are ended by a shutdown instead of holding it up', async () => {
    const idle = await startSystem({ workers: 0 });
    const images = await startImageServer(41_000);
    try {
      const created = await callApi(idle, 'POST', '/v1/batches', {
        body: { items: [{ image_url: images.url(1) }, { image_url: images.url(2) }] },
      });
      const link = await reviewLink(idle, 'batches', created.body.id);
      const stream = await request(`${idle.apiUrl}${link.path}/events`);
      let text = '';
      let closing: Promise<void> | undefined;
      for await (const chunk of stream.body) {
        text += String(chunk);
        // Shut down once the stream has said where the batch stands.
        if (!closing && text.includes('event: progress')) closing = idle.close();
      }
      await closing;
      // The batch never ended (no worker): the stream ended because the API shut down.
      expect(text).toContain('event: progress');
      expect(text).toContain('"status":"processing"');
      expect(text).not.toContain('event: end');
    } finally {
      await images.close();
    }
  });
});
