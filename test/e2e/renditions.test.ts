import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData, request } from 'undici';
import { parseCsv } from '../../apps/api/src/intake/csv.ts';
import { productImage, type ProductShot } from '../helpers/images.ts';
import { cornerColours, nonWhiteBox } from '../helpers/cutouts.ts';
import { batchEnded, manifest } from '../helpers/batches.ts';
import { emulatorStats, getJob, settle, submitPhoto, type Json } from '../helpers/jobs.ts';
import { callApi, verifyDelivery } from '../helpers/webhooks.ts';
import { fetchPath, reviewLink } from '../helpers/reviews.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';

/** Product photos on a white studio background, each with its own (distinct) bytes. */
const GOOD: ProductShot = { width: 1200, height: 900, object: { left: 450, top: 250, width: 300, height: 400 } };
const TOUCHING: ProductShot = { width: 400, height: 300, object: { left: 100, top: 150, width: 200, height: 150 } };
const TINY: ProductShot = { width: 800, height: 600, object: { left: 370, top: 270, width: 60, height: 60 } };

const RENDITIONS = [
  { name: 'amazon', preset: 'marketplace' },
  { name: 'web', preset: 'web' },
  { name: 'thumb', format: 'png', max_size: 200 },
];

describe('renditions and quality flags, end to end', () => {
  let system: TestSystem;
  let receiver: WebhookReceiver;
  let variant = 0;

  beforeAll(async () => {
    // The emulator takes its problem cases as an option, which the operator must let through.
    system = await startSystem({ env: { BYBYBG_ALLOWED_OPTIONS: 'emulate_cutout,size' } });
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await system?.close();
  });

  const photo = (shot: ProductShot) => productImage('png', shot, variant++);
  const upstreamCalls = async () => (await emulatorStats(system)).total as number;
  const download = async (url: string) => Buffer.from(await (await request(url)).body.arrayBuffer());

  async function settled(id: string): Promise<Json> {
    const [view] = await settle(system, [id]);
    return view!;
  }

  it('makes every rendition from the one ByByBG call, and sends them in the webhook', async () => {
    const before = await upstreamCalls();
    const id = await submitPhoto(system, await photo(GOOD), {
      renditions: JSON.stringify(RENDITIONS),
      webhook_url: receiver.url,
    });
    const view = await settled(id);
    expect(await upstreamCalls()).toBe(before + 1);
    expect(view).toMatchObject({
      status: 'succeeded',
      upstream_calls: 1,
      result: { content_type: 'image/png' },
      quality: { flags: [], edge_contact: 0 },
    });
    expect(view.quality.subject_coverage).toBeCloseTo((300 * 400) / (1200 * 900), 2);
    expect(view.renditions).toEqual({
      amazon: {
        url: expect.stringContaining(`renditions/acme/${id}/amazon.jpg`),
        content_type: 'image/jpeg',
        width: 1000,
        height: 1000,
        bytes: expect.any(Number),
        upscaled: true,
        expires_at: expect.any(String),
      },
      web: {
        url: expect.stringContaining(`renditions/acme/${id}/web.webp`),
        content_type: 'image/webp',
        width: 1200,
        height: 900,
        bytes: expect.any(Number),
        upscaled: false,
        expires_at: expect.any(String),
      },
      thumb: {
        url: expect.stringContaining(`renditions/acme/${id}/thumb.png`),
        content_type: 'image/png',
        width: 200,
        height: 150,
        bytes: expect.any(Number),
        upscaled: false,
        expires_at: expect.any(String),
      },
    });

    // The marketplace rendition, fetched as a client would: a 302 to S3.
    const redirect = await request(`${system.apiUrl}/v1/jobs/${id}/renditions/amazon`, {
      headers: { 'x-api-key': system.apiKey },
    });
    expect(redirect.statusCode).toBe(302);
    await redirect.body.dump();
    const amazon = await download(String(redirect.headers.location));
    expect(await sharp(amazon).metadata()).toMatchObject({ format: 'jpeg', width: 1000, height: 1000 });
    expect(await cornerColours(amazon)).toEqual([
      [255, 255, 255],
      [255, 255, 255],
      [255, 255, 255],
      [255, 255, 255],
    ]);
    const product = (await nonWhiteBox(amazon))!;
    const share = Math.max(product.width, product.height) / 1000;
    expect(share).toBeGreaterThanOrEqual(0.8);
    expect(share).toBeLessThanOrEqual(0.95);
    expect(await sharp(await download(view.renditions.web.url)).metadata()).toMatchObject({
      format: 'webp',
      hasAlpha: true,
    });

    const [delivery] = await receiver.waitFor(1);
    const event = verifyDelivery((await callApi(system, 'GET', '/v1/account')).body.webhook_secret, delivery!);
    expect(event).toMatchObject({
      type: 'job.succeeded',
      data: {
        id,
        quality: { flags: [] },
        renditions: { amazon: { width: 1000 }, web: { content_type: 'image/webp' } },
      },
    });
  });

  it('flags each problem cutout, keeps the job succeeded, and fails only the rendition that cannot be made', async () => {
    const marketplace = JSON.stringify([{ name: 'amazon', preset: 'marketplace' }]);
    const cases: [string, Buffer, Record<string, string>][] = [
      ['subject_cut_off', await photo(TOUCHING), {}],
      ['tiny_subject', await photo(TINY), {}],
      ['empty_cutout', await photo(GOOD), { options: JSON.stringify({ emulate_cutout: 'empty' }) }],
      ['background_not_removed', await photo(GOOD), { options: JSON.stringify({ emulate_cutout: 'unchanged' }) }],
      ['mostly_semitransparent', await photo(GOOD), { options: JSON.stringify({ emulate_cutout: 'ghost' }) }],
    ];
    const before = await upstreamCalls();
    const ids = await Promise.all(
      cases.map(([, image, fields]) => submitPhoto(system, image, { ...fields, renditions: marketplace })),
    );
    const views = await settle(system, ids);
    expect(await upstreamCalls()).toBe(before + cases.length);
    expect(views.map((view) => [view.status, view.quality.flags])).toEqual(
      cases.map(([flag]) => ['succeeded', [flag]]),
    );
    const empty = views[2]!;
    expect(empty.quality.subject_coverage).toBe(0);
    expect(empty.renditions).toEqual({ amazon: { error: 'the cutout is empty: there is no product to crop to' } });
    const failed = await request(`${system.apiUrl}/v1/jobs/${empty.id}/renditions/amazon`, {
      headers: { 'x-api-key': system.apiKey },
    });
    expect(failed.statusCode).toBe(409);
    expect(((await failed.body.json()) as Json).error).toMatchObject({ code: 'rendition_failed' });
    expect(views[3]!.quality).toMatchObject({ subject_coverage: 1, edge_contact: 1 });
    expect(views[0]!.renditions.amazon).toMatchObject({ width: 1000, height: 1000 });
  });

  it('reruns a job with other renditions from the stored cutout, without calling ByByBG', async () => {
    const id = await submitPhoto(system, await photo(GOOD), {
      renditions: JSON.stringify([{ name: 'web', preset: 'web' }]),
    });
    await settled(id);
    const before = await upstreamCalls();
    const rerun = await callApi(system, 'POST', `/v1/jobs/${id}/rerun`, {
      body: {
        renditions: [
          { name: 'square', format: 'webp', crop: 'subject', canvas: 'square', padding: 0.1, max_size: 500 },
        ],
      },
    });
    expect(rerun.status).toBe(202);
    const view = await settled(rerun.body.id);
    expect(await upstreamCalls()).toBe(before);
    expect(view).toMatchObject({
      status: 'succeeded',
      credits_saved: 1,
      upstream_calls: 0,
      rerun_of: id,
      quality: { flags: [] },
    });
    expect(Object.keys(view.renditions)).toEqual(['square']);
    // The 400-pixel-high product fills 80 % of 500 px exactly: neither scaled up nor down.
    expect(view.renditions.square).toMatchObject({ width: 500, height: 500, upscaled: false });
    expect(await sharp(await download(view.renditions.square.url)).metadata()).toMatchObject({
      format: 'webp',
      width: 500,
      hasAlpha: true,
    });
  });

  it("counts, lists and reruns a batch's flagged items, with rendition columns in its manifest", async () => {
    const form = new FormData();
    form.append(
      'renditions',
      JSON.stringify([
        { name: 'amazon', preset: 'marketplace' },
        { name: 'web', preset: 'web' },
      ]),
    );
    for (const [name, shot] of [
      ['good.png', GOOD],
      ['touching.png', TOUCHING],
      ['tiny.png', TINY],
    ] as const) {
      form.append('file', new Blob([await photo(shot)], { type: 'image/png' }), name);
    }
    const created = await request(`${system.apiUrl}/v1/batches`, {
      method: 'POST',
      body: form,
      headers: { 'x-api-key': system.apiKey },
    });
    const batch = (await created.body.json()) as Json;
    expect(created.statusCode).toBe(202);
    const ended = await batchEnded(system, batch.id);
    expect(ended.counts).toMatchObject({ total: 3, succeeded: 3, quality_flagged: 2 });

    const flagged = await callApi(system, 'GET', `/v1/batches/${batch.id}/jobs?quality=flagged`);
    expect(flagged.body.data.map((job: Json) => [job.client_ref, job.quality.flags]).sort()).toEqual([
      ['tiny.png', ['tiny_subject']],
      ['touching.png', ['subject_cut_off']],
    ]);

    const lines = (await manifest(system, batch.id)).text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(lines.map((line) => [line.client_ref, line.quality_flags])).toEqual([
      ['good.png', []],
      ['touching.png', ['subject_cut_off']],
      ['tiny.png', ['tiny_subject']],
    ]);
    expect(lines[0]!.renditions).toMatchObject({
      amazon: { content_type: 'image/jpeg', width: 1000 },
      web: { content_type: 'image/webp' },
    });
    const [header, ...rows] = parseCsv((await manifest(system, batch.id, 'csv')).text);
    expect(header!.slice(-3)).toEqual(['quality_flags', 'rendition_amazon_url', 'rendition_web_url']);
    expect(rows.map((row) => row[7])).toEqual(['', 'subject_cut_off', 'tiny_subject']);
    expect(rows[0]![8]).toContain(`/amazon.jpg`);
    expect(rows[0]![9]).toContain(`/web.webp`);

    // The review page's data: the auto-flagged filter, each flag in words, the renditions through the link.
    const link = await reviewLink(system, 'batches', batch.id);
    expect((await fetchPath(system, `${link.path}/data`)).json().batch.counts.quality_flagged).toBe(2);
    const page = (await fetchPath(system, `${link.path}/items?filter=quality_flagged`)).json();
    const touching = page.data.find((item: Json) => item.client_ref === 'touching.png');
    expect(touching.quality_flags).toEqual([
      { flag: 'subject_cut_off', text: 'The product touches the edge of the frame: part of it may be cut off' },
    ]);
    expect(touching.renditions.map((rendition: Json) => rendition.name)).toEqual(['amazon', 'web']);
    const download = await request(`${system.apiUrl}${touching.renditions[0].url}`);
    expect(download.statusCode).toBe(302);
    expect(String(download.headers.location)).toContain('touching.png-amazon.jpg');
    await download.body.dump();
    expect((await fetchPath(system, `${link.path}/items/${touching.id}/renditions/__proto__`)).status).toBe(404);

    const rerun = await callApi(system, 'POST', `/v1/batches/${batch.id}/rerun`, {
      body: { items: 'quality_flagged', options: { size: 'full' } },
    });
    expect(rerun.status).toBe(202);
    expect(rerun.body).toMatchObject({ rerun_of: batch.id, counts: { total: 2 } });
    const again = await batchEnded(system, rerun.body.id);
    expect(again.counts).toMatchObject({ succeeded: 2, quality_flagged: 2 });
    const rerunJobs = await callApi(system, 'GET', `/v1/batches/${rerun.body.id}/jobs`);
    // The batch's renditions carry over to the rerun.
    expect(rerunJobs.body.data.every((job: Json) => Object.keys(job.renditions).join() === 'amazon,web')).toBe(true);
  });

  it('gives a job without renditions an empty set and its quality', async () => {
    const view = await getJob(system, await submitPhoto(system, await photo(GOOD)));
    const done = view.status === 'succeeded' ? view : await settled(view.id);
    expect(done).toMatchObject({ renditions: {}, quality: { flags: [] } });
  });
});
