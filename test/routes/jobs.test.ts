import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord, JobStore } from '@cutout/shared/stores';
import { jobRoutes } from '../../apps/api/src/routes/jobs.ts';
import type { AppDeps } from '../../apps/api/src/deps.ts';
import { routeApp, type RouteApp } from '../helpers/route-app.ts';

const JOB_ID = 'job_3kTq9ZbXw2Lm8Rp5Yc1Nv7Ha';
const GLOBEX_JOB_ID = 'job_9zQx2LmTq8Rp5Yc1Nv7Ha3kW';

const job = (id: string, tenantId: string): JobRecord => ({
  id,
  tenantId,
  status: 'queued',
  createdAt: '2026-12-01T10:00:00.000Z',
  attempts: 0,
  upstreamCalls: 0,
  originalKey: `originals/${tenantId}/${id}`,
  originalBytes: 1234,
  originalContentType: 'image/png',
  metadata: { sku: 'A-1' },
});

/**
 * The job routes alone, with `inject()`: who may call them and what they refuse, decided
 * before any store or upload is touched (the app has none: touching one is a 500), and a
 * poll against a store held in memory.
 */
describe('job routes', () => {
  let route: RouteApp;
  const records = new Map([
    [JOB_ID, job(JOB_ID, 'acme')],
    [GLOBEX_JOB_ID, job(GLOBEX_JOB_ID, 'globex')],
  ]);
  const deps: Partial<AppDeps> = {
    jobs: { get: async (id: string) => records.get(id) ?? null } as unknown as JobStore,
    jobStatus: { read: async (id: string) => ({ record: records.get(id) ?? null, hold: null }) },
    upstream: { holds: async () => ({}), pauseRemainingMs: async () => 0 } as unknown as AppDeps['upstream'],
    budgets: { room: async () => Number.POSITIVE_INFINITY } as unknown as AppDeps['budgets'],
  };

  beforeAll(async () => {
    route = await routeApp(jobRoutes, deps);
  });
  afterAll(async () => {
    expect(route.violations).toEqual([]);
    await route.app.close();
  });

  const submit = (headers: Record<string, string>, payload: unknown = { image_url: 'https://shop.example/a.jpg' }) =>
    route.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { 'content-type': 'application/json', ...headers },
      payload: JSON.stringify(payload),
    });
  const codeOf = (response: { json(): unknown }) => (response.json() as { error: { code: string } }).error.code;

  it('refuses a caller before anything is read or stored', async () => {
    const cases: [Record<string, string>, number, string][] = [
      [{}, 401, 'missing_api_key'],
      [{ 'x-api-key': 'ck_live_short' }, 401, 'invalid_api_key'],
      [{ 'x-api-key': `ck_live_${'A'.repeat(38)}` }, 401, 'invalid_api_key'],
      [{ 'x-api-key': 'rvw_bbatch_x.1.2.abcdef' }, 401, 'review_link_not_api_key'],
      [{ 'x-api-key': route.keys.revoked }, 401, 'revoked_api_key'],
      [{ 'x-api-key': route.keys.readOnly }, 403, 'insufficient_scope'],
    ];
    for (const [headers, status, code] of cases) {
      const response = await submit(headers);
      expect([response.statusCode, codeOf(response)], JSON.stringify(headers)).toEqual([status, code]);
    }
  });

  it("refuses bad JSON fields with the field's own code, before any store is used", async () => {
    const key = { 'x-api-key': route.keys.acme };
    const cases: [unknown, number, string][] = [
      [{}, 400, 'missing_file'],
      [{ image_url: 'https://shop.example/a.jpg', colour: 'red' }, 400, 'unknown_field'],
      [{ image_url: 'https://shop.example/a.jpg', webhook_url: 'ftp://example.com/hook' }, 422, 'invalid_webhook_url'],
      [
        { image_url: 'https://shop.example/a.jpg', webhook_url: 'http://169.254.169.254/latest' },
        422,
        'invalid_webhook_url',
      ],
      [{ image_url: 'https://shop.example/a.jpg', options: { size: 'full' } }, 422, 'invalid_options'],
      [{ image_url: 'https://shop.example/a.jpg', metadata: [1, 2] }, 422, 'invalid_metadata'],
      [
        { image_url: 'https://shop.example/a.jpg', renditions: [{ name: 'x', preset: 'nope' }] },
        422,
        'invalid_renditions',
      ],
      [[1, 2], 400, 'invalid_request'],
    ];
    for (const [payload, status, code] of cases) {
      const response = await submit(key, payload);
      expect([response.statusCode, codeOf(response)], JSON.stringify(payload)).toEqual([status, code]);
    }
    const text = await route.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      headers: { ...key, 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect([text.statusCode, codeOf(text)]).toEqual([415, 'unsupported_media_type']);
    const idempotency = await submit({ ...key, 'idempotency-key': 'two words' });
    expect([idempotency.statusCode, codeOf(idempotency)]).toEqual([400, 'invalid_idempotency_key']);
  });

  it('shows a job to its tenant only, with an ETag a poll can send back', async () => {
    const key = { 'x-api-key': route.keys.acme };
    const own = await route.app.inject({ method: 'GET', url: `/v1/jobs/${JOB_ID}`, headers: key });
    expect(own.statusCode).toBe(200);
    expect(own.json()).toMatchObject({ id: JOB_ID, status: 'queued', metadata: { sku: 'A-1' }, waiting_reason: null });
    const etag = own.headers.etag as string;
    expect(etag).toMatch(/^W\/"[0-9a-f]{24}"$/);
    const unchanged = await route.app.inject({
      method: 'GET',
      url: `/v1/jobs/${JOB_ID}`,
      headers: { ...key, 'if-none-match': etag },
    });
    expect([unchanged.statusCode, unchanged.body]).toEqual([304, '']);

    const readOnly = await route.app.inject({
      method: 'GET',
      url: `/v1/jobs/${JOB_ID}`,
      headers: { 'x-api-key': route.keys.readOnly },
    });
    expect(readOnly.statusCode).toBe(200);
    for (const url of [`/v1/jobs/${GLOBEX_JOB_ID}`, '/v1/jobs/job_nope', `/v1/jobs/${JOB_ID}x`]) {
      const response = await route.app.inject({ method: 'GET', url, headers: key });
      expect([response.statusCode, codeOf(response)], url).toEqual([404, 'not_found']);
    }
    // Another tenant's job cannot be told from a missing one.
    const theirs = await route.app.inject({ method: 'GET', url: `/v1/jobs/${GLOBEX_JOB_ID}`, headers: key });
    const none = await route.app.inject({ method: 'GET', url: '/v1/jobs/job_AAAAAAAAAAAAAAAAAAAAAAAA', headers: key });
    expect((theirs.json() as { error: { message: string } }).error.message).toBe(
      (none.json() as { error: { message: string } }).error.message,
    );
  });

  it('refuses bad list queries', async () => {
    const key = { 'x-api-key': route.keys.acme };
    const cases: [string, string][] = [
      ['status=bogus', 'invalid_request'],
      ['limit=0', 'invalid_request'],
      ['limit=101', 'invalid_request'],
      ['limit=two', 'invalid_request'],
      [`cursor=${'x'.repeat(600)}`, 'invalid_cursor'],
    ];
    for (const [query, code] of cases) {
      const response = await route.app.inject({ method: 'GET', url: `/v1/jobs?${query}`, headers: key });
      expect([response.statusCode, codeOf(response)], query.slice(0, 40)).toEqual([400, code]);
    }
  });
});
