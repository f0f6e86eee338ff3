import { createServer } from 'node:http';
import sharp from 'sharp';
import type { AddressInfo } from 'node:net';
import { request, type FormData } from 'undici';
import { productImage, PRODUCT_SHOT } from './images.ts';
import type { Json } from './jobs.ts';
import type { TestSystem } from './system.ts';
import { eventually } from './webhooks.ts';

export interface ImageServer {
  url(n: number): string;
  plainUrl(n: number): string;
  requests(): number;
  close(): Promise<void>;
}

/** An empty white scene, n pixels wider than 200 so each is a distinct image. */
const plainImage = (n: number): Promise<Buffer> =>
  sharp({ create: { width: 200 + n, height: 150, channels: 3, background: '#ffffff' } })
    .png()
    .toBuffer();

/**
 * A loopback server of product photos: `/img/<n>.png` is photo variant n (distinct bytes,
 * so the worker's dedup never merges them), made on first request; `/plain/<n>.png` is a
 * photo with nothing on it, which ByByBG refuses (no foreground); `/missing/…` is a 404.
 */
export async function startImageServer(firstVariant = 0): Promise<ImageServer> {
  const cache = new Map<number, Promise<Buffer>>();
  let served = 0;
  const server = createServer((req, res) => {
    served += 1;
    const match = /^\/(img|plain)\/(\d+)\.png$/.exec(req.url ?? '');
    if (!match) return void res.writeHead(404).end('not found');
    const n = Number(match[2]) * (match[1] === 'plain' ? -1 : 1) - (match[1] === 'plain' ? 1 : 0);
    if (!cache.has(n)) cache.set(n, n >= 0 ? productImage('png', PRODUCT_SHOT, firstVariant + n) : plainImage(-n));
    cache.get(n)!.then(
      (png) => res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length }).end(png),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (n) => `http://127.0.0.1:${port}/img/${n}.png`,
    plainUrl: (n) => `http://127.0.0.1:${port}/plain/${n}.png`,
    requests: () => served,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** POSTs a batch (JSON object or multipart form) as the system's tenant, or as `key`. */
export async function postBatch(
  system: TestSystem,
  body: Json | FormData,
  { key = system.apiKey, headers = {} }: { key?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Json }> {
  const isJson = !(body instanceof Object && typeof (body as FormData).append === 'function');
  const response = await request(`${system.apiUrl}/v1/batches`, {
    method: 'POST',
    body: isJson ? JSON.stringify(body) : (body as FormData),
    headers: { 'x-api-key': key, ...(isJson ? { 'content-type': 'application/json' } : {}), ...headers },
  });
  return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as Json };
}

export async function getBatch(
  system: TestSystem,
  id: string,
  key = system.apiKey,
): Promise<{ status: number; body: Json }> {
  const response = await request(`${system.apiUrl}/v1/batches/${id}`, { headers: { 'x-api-key': key } });
  return { status: response.statusCode, body: (await response.body.json()) as Json };
}

/** Polls until every item of the batch has ended; returns the batch view. */
export function batchEnded(system: TestSystem, id: string, timeoutMs = 120_000): Promise<Json> {
  return eventually(
    async () => {
      const { body } = await getBatch(system, id);
      const { total, succeeded, failed, canceled } = body.counts;
      return succeeded + failed + canceled === total ? body : undefined;
    },
    { timeoutMs, describe: `batch ${id} ended` },
  );
}

/** The results manifest as text, in the given format. */
export async function manifest(
  system: TestSystem,
  id: string,
  format: 'jsonl' | 'csv' = 'jsonl',
  { accept }: { accept?: string } = {},
): Promise<{ status: number; contentType: string; text: string }> {
  const query = accept ? '' : `?format=${format}`;
  const response = await request(`${system.apiUrl}/v1/batches/${id}/results${query}`, {
    headers: { 'x-api-key': system.apiKey, ...(accept ? { accept } : {}) },
  });
  return {
    status: response.statusCode,
    contentType: String(response.headers['content-type']),
    text: await response.body.text(),
  };
}
