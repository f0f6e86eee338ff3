import { request, FormData } from 'undici';
import { productImage, PRODUCT_SHOT } from './images.ts';
import type { TestSystem } from './system.ts';

export type Json = Record<string, any>;

/** Submits `count` different product photos (distinct bytes, so none is a duplicate). */
export async function submitPhotos(
  system: TestSystem,
  count: number,
  {
    firstVariant = 0,
    fields = {},
    parallel = 1,
  }: { firstVariant?: number; fields?: Record<string, string>; parallel?: number } = {},
): Promise<string[]> {
  // Ids in submission order; `parallel` makes and submits that many photos at once.
  const ids: string[] = new Array(count);
  let next = 0;
  const submitNext = async () => {
    while (next < count) {
      const i = next++;
      const photo = await productImage('png', PRODUCT_SHOT, firstVariant + i);
      ids[i] = await submitPhoto(system, photo, fields);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, submitNext));
  return ids;
}

export async function submitPhoto(
  system: TestSystem,
  photo: Buffer,
  fields: Record<string, string> = {},
): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([photo], { type: 'image/png' }), 'photo.png');
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const response = await request(`${system.apiUrl}/v1/jobs`, {
    method: 'POST',
    body: form,
    headers: { 'x-api-key': system.apiKey },
  });
  const body = (await response.body.json()) as Json;
  if (response.statusCode !== 202)
    throw new Error(`submission answered ${response.statusCode}: ${JSON.stringify(body)}`);
  return body.id as string;
}

export async function getJob(system: TestSystem, id: string): Promise<Json> {
  const response = await request(`${system.apiUrl}/v1/jobs/${id}`, { headers: { 'x-api-key': system.apiKey } });
  return (await response.body.json()) as Json;
}

const ENDED = ['succeeded', 'failed', 'canceled'];

/** Polls until every job has ended; returns their final views. */
export async function settle(system: TestSystem, ids: string[], timeoutMs = 60_000): Promise<Json[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const views: Json[] = [];
    for (let i = 0; i < ids.length; i += 50)
      views.push(...(await Promise.all(ids.slice(i, i + 50).map((id) => getJob(system, id)))));
    if (views.every((view) => ENDED.includes(view.status))) return views;
    if (Date.now() > deadline)
      throw new Error(`jobs still running: ${views.filter((view) => !ENDED.includes(view.status)).length}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function emulatorStats(system: TestSystem): Promise<Json> {
  return (await (await request(`${system.emulator.url}/_stats`)).body.json()) as Json;
}

export async function setFaults(system: TestSystem, faults: Json): Promise<void> {
  const response = await request(`${system.emulator.url}/_faults`, {
    method: 'PUT',
    body: JSON.stringify(faults),
    headers: { 'content-type': 'application/json' },
  });
  if (response.statusCode !== 200) throw new Error(`emulator refused faults: ${await response.body.text()}`);
  await response.body.dump();
}

export async function setEmulatorKeys(system: TestSystem, keys: string[]): Promise<void> {
  const response = await request(`${system.emulator.url}/_keys`, {
    method: 'PUT',
    body: JSON.stringify({ keys }),
    headers: { 'content-type': 'application/json' },
  });
  await response.body.dump();
}

/** How many jobs the tenant of `apiKey` has, as `GET /v1/jobs` lists them (every page). */
export async function countJobs(system: TestSystem, apiKey = system.apiKey): Promise<number> {
  let count = 0;
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `?limit=100&cursor=${encodeURIComponent(cursor)}` : '?limit=100';
    const response = await request(`${system.apiUrl}/v1/jobs${query}`, { headers: { 'x-api-key': apiKey } });
    const page = (await response.body.json()) as Json;
    if (response.statusCode !== 200)
      throw new Error(`GET /v1/jobs answered ${response.statusCode}: ${JSON.stringify(page)}`);
    count += (page.data as unknown[]).length;
    cursor = page.next_cursor as string | null;
  } while (cursor);
  return count;
}
