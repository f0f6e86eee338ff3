import { request } from 'undici';
import type { Json } from './jobs.ts';
import type { TestSystem } from './system.ts';
import { batchEnded, postBatch, type ImageServer } from './batches.ts';
import { callApi } from './webhooks.ts';

/**
 * A batch of `good` product photos, then `plain` empty scenes (ByByBG finds no foreground:
 * they fail with their originals stored), then `missing` URLs that answer 404 (they fail
 * before anything is stored); returns the ended batch.
 */
export async function reviewBatch(
  system: TestSystem,
  images: ImageServer,
  { good, plain = 0, missing = 0, first = 0 }: { good: number; plain?: number; missing?: number; first?: number },
): Promise<Json> {
  const items = [
    ...Array.from({ length: good }, (_, i) => ({
      image_url: images.url(first + i),
      client_ref: `sku-${first + i}`,
      metadata: { shelf: first + i },
    })),
    ...Array.from({ length: plain }, (_, i) => ({ image_url: images.plainUrl(first + i), client_ref: `plain-${i}` })),
    ...Array.from({ length: missing }, (_, i) => ({
      image_url: images.url(first + i).replace('/img/', '/missing/'),
      client_ref: `missing-${i}`,
    })),
  ];
  const created = await postBatch(system, { items });
  if (created.status !== 202) throw new Error(`batch not accepted: ${JSON.stringify(created.body)}`);
  return batchEnded(system, created.body.id);
}

/** A review link for a batch or job; returns the page URL and its path. */
export async function reviewLink(
  system: TestSystem,
  kind: 'batches' | 'jobs',
  id: string,
  body?: Json,
): Promise<{ url: string; path: string; token: string; body: Json }> {
  const response = await callApi(system, 'POST', `/v1/${kind}/${id}/review-link`, { body });
  if (response.status !== 201) throw new Error(`review link refused: ${JSON.stringify(response.body)}`);
  const url = String(response.body.url);
  const path = new URL(url).pathname;
  return { url, path, token: path.split('/')[2]!, body: response.body };
}

/** GET on the API without an API key: what a browser holding only the link can do. */
export async function fetchPath(
  system: TestSystem,
  path: string,
  init: { method?: 'GET' | 'PUT' | 'DELETE'; body?: unknown } = {},
): Promise<{ status: number; headers: Record<string, unknown>; text: string; json: () => Json }> {
  const response = await request(`${system.apiUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) as Json };
}
