import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchRecord, BatchStore } from '@cutout/shared/stores';
import { batchRoutes } from '../../apps/api/src/routes/batches.ts';
import type { AppDeps } from '../../apps/api/src/deps.ts';
import { routeApp, type RouteApp } from '../helpers/route-app.ts';

const GLOBEX_BATCH = 'batch_7Qm2Xw9Lr4Tz1Vb8Kc3Np6Hs';

/**
 * `POST /v1/batches` alone, with `inject()` and no batch store, idempotency store or S3:
 * what it refuses is refused before anything is written, and a dry run of URL items is
 * answered from the rate and budget state only (touching a missing service is a 500).
 */
describe('batch routes', () => {
  let route: RouteApp;
  const deps: Partial<AppDeps> = {
    batches: {
      get: async (id: string) => (id === GLOBEX_BATCH ? ({ id, tenantId: 'globex' } as BatchRecord) : null),
    } as unknown as BatchStore,
    upstream: {
      holds: async () => ({}),
      pauseRemainingMs: async () => 0,
      rate: async () => ({ ratePerSecond: 4 }),
    } as unknown as AppDeps['upstream'],
    budgets: {
      room: async () => 100,
      state: async () => ({ daily: null, monthly: null }),
    } as unknown as AppDeps['budgets'],
    queues: {
      removeBg: { getJobCounts: async () => ({ waiting: 6, prioritized: 0, active: 2 }) },
    } as unknown as AppDeps['queues'],
  };

  beforeAll(async () => {
    route = await routeApp(batchRoutes, deps);
  });
  afterAll(async () => {
    expect(route.violations).toEqual([]);
    await route.app.close();
  });

  const post = (
    payload: string,
    {
      type = 'application/json',
      url = '/v1/batches',
      key = route.keys.acme,
    }: { type?: string; url?: string; key?: string } = {},
  ) => route.app.inject({ method: 'POST', url, headers: { 'x-api-key': key, 'content-type': type }, payload });
  const codeOf = (response: { json(): unknown }) => (response.json() as { error: { code: string } }).error.code;
  const items = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ image_url: `https://cdn.example.com/p/${i}.jpg` }));

  it('refuses a request before it writes anything', async () => {
    const cases: [string, { type?: string; url?: string; key?: string }, number, string][] = [
      [JSON.stringify({ items: items(2) }), { key: route.keys.readOnly }, 403, 'insufficient_scope'],
      [JSON.stringify({ items: items(2), colour: 'red' }), {}, 400, 'unknown_field'],
      [JSON.stringify({ items: items(2), items_again: [] }), {}, 400, 'unknown_field'],
      [JSON.stringify({ webhook_url: 'https://hooks.example.com/h' }), {}, 400, 'missing_items'],
      [JSON.stringify({ items: items(1), upload_id: 'upl_x' }), {}, 400, 'ambiguous_items'],
      [JSON.stringify({ items: items(2), webhook_url: 'http://10.0.0.8/hook' }), {}, 422, 'invalid_webhook_url'],
      [JSON.stringify({ webhook_url: 'ftp://x', items: items(2) }), {}, 422, 'invalid_webhook_url'],
      [JSON.stringify({ items: items(2), item_events: 'yes' }), {}, 422, 'invalid_item_events'],
      [JSON.stringify({ items: items(2), dry_run: 'true' }), {}, 422, 'invalid_dry_run'],
      [JSON.stringify({ items: items(2), options: { size: 'full' } }), {}, 422, 'invalid_options'],
      [
        JSON.stringify({ items: [{ image_url: 'ftp://x' }, { image_url: 'http://127.0.0.1/a.png' }] }),
        {},
        422,
        'no_valid_items',
      ],
      [JSON.stringify({ items: items(2) }), { url: '/v1/batches?dry_run=true' }, 400, 'invalid_request'],
      ['{"items": [', {}, 400, 'invalid_request'],
      [
        'image_url\nhttps://cdn.example.com/a.jpg\n',
        { type: 'text/csv', url: '/v1/batches?item_events=maybe' },
        422,
        'invalid_item_events',
      ],
      [
        'image_url\nhttps://cdn.example.com/a.jpg\n',
        { type: 'text/csv', url: '/v1/batches?colour=red' },
        400,
        'invalid_request',
      ],
      ['hello', { type: 'text/plain' }, 415, 'unsupported_media_type'],
    ];
    for (const [payload, options, status, code] of cases) {
      const response = await post(payload, options);
      expect([response.statusCode, codeOf(response)], `${payload.slice(0, 80)} ${JSON.stringify(options)}`).toEqual([
        status,
        code,
      ]);
    }
    // Every refused row is named, whatever the number.
    const none = await post(JSON.stringify({ items: [{ image_url: 'ftp://x' }, { nope: 1 }] }));
    expect((none.json() as { error: { rejected: unknown[] } }).error.rejected).toEqual([
      { row: 1, reason: expect.stringContaining('invalid_image_url') },
      { row: 2, reason: expect.any(String) },
    ]);
  });

  it('answers a dry run of URL items from the queue, rate and budget alone', async () => {
    const response = await post(JSON.stringify({ items: [...items(3), { image_url: 'ftp://x' }], dry_run: true }));
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      object: 'batch_estimate',
      items: 3,
      rejected: [{ row: 4 }],
      duplicates: 0,
      upstream_calls: 3,
      upstream_calls_exact: false,
      eta_seconds: 3,
      waiting_reason: null, // (8 queued or running + 3) ÷ 4 calls/s
    });
    const csv = await post('image_url,client_ref\nhttps://cdn.example.com/a.jpg,A\n', {
      type: 'text/csv',
      url: '/v1/batches?dry_run=true',
    });
    expect([csv.statusCode, (csv.json() as { items: number }).items]).toEqual([200, 1]);
  });

  it('shows a batch to its tenant only', async () => {
    for (const [id, key] of [
      [GLOBEX_BATCH, route.keys.acme],
      ['batch_nope', route.keys.acme],
      ['batch_AAAAAAAAAAAAAAAAAAAAAAAA', route.keys.acme],
    ] as const) {
      const response = await route.app.inject({
        method: 'GET',
        url: `/v1/batches/${id}`,
        headers: { 'x-api-key': key },
      });
      expect([response.statusCode, codeOf(response)], id).toEqual([404, 'not_found']);
    }
  });
});
