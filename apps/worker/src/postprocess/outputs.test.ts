import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, makeStorage, type Storage } from '@cutout/shared/infra';
import { parseRenditions } from '@cutout/shared/renditions';
import type { JobRecord } from '@cutout/shared/stores';
import { DEFAULT_QUALITY_THRESHOLDS } from '@cutout/shared/views';
import { s3ClientFor, testS3, type TestS3 } from '../../../../test/helpers/services.ts';
import { cornerColours, cutoutPng, nonWhiteBox, unchangedPng } from '../../../../test/helpers/cutouts.ts';
import { makeCutoutOutputs, type CutoutOutputs } from './outputs.ts';

let s3: TestS3;
let storage: Storage;
let outputs: CutoutOutputs;

beforeAll(async () => {
  s3 = await testS3();
  storage = makeStorage({ client: s3ClientFor(s3), bucket: s3.bucket });
  await storage.ensureBucket();
  outputs = makeCutoutOutputs({
    storage,
    maxPixels: 50_000_000,
    thresholds: DEFAULT_QUALITY_THRESHOLDS,
    decodeSlots: 2,
    log: createLogger({ level: 'silent', name: 'test' }),
  });
});

afterAll(async () => {
  await s3?.close();
});

const SPECS = [
  { name: 'amazon', preset: 'marketplace' },
  { name: 'web', preset: 'web' },
  { name: 'thumb', max_size: 200 },
];

function record(id: string, specs: unknown[] = SPECS): JobRecord {
  const parsed = parseRenditions(specs);
  if (!parsed.ok) throw new Error(parsed.message);
  return {
    id,
    tenantId: 'acme',
    status: 'processing',
    createdAt: new Date().toISOString(),
    attempts: 0,
    upstreamCalls: 1,
    originalKey: `originals/acme/${id}`,
    originalBytes: 1,
    originalContentType: 'image/jpeg',
    renditionPlans: parsed.plans,
  };
}

/** A 1200 × 800 product photo's cutout, the product (300 × 400) well inside the frame. */
const goodCutout = () => cutoutPng({ width: 1200, height: 800, box: { left: 500, top: 200, width: 300, height: 400 } });

describe('cutout outputs', () => {
  it('makes a square white marketplace JPEG, a transparent WebP and a small PNG from one cutout, and no flag', async () => {
    const made = await outputs.make(record('job_good'), await goodCutout());
    expect(made.quality).toEqual({ flags: [], subjectCoverage: 0.125, edgeContact: 0, semitransparentShare: 0 });
    expect(made.qualityFlagged).toBeUndefined();
    expect(made.renditions).toEqual({
      amazon: {
        key: 'renditions/acme/job_good/amazon.jpg',
        contentType: 'image/jpeg',
        width: 1000,
        height: 1000,
        bytes: expect.any(Number),
        upscaled: true,
      },
      web: {
        key: 'renditions/acme/job_good/web.webp',
        contentType: 'image/webp',
        width: 1200,
        height: 800,
        bytes: expect.any(Number),
        upscaled: false,
      },
      thumb: {
        key: 'renditions/acme/job_good/thumb.png',
        contentType: 'image/png',
        width: 200,
        height: 133,
        bytes: expect.any(Number),
        upscaled: false,
      },
    });

    const amazon = await storage.getBuffer('renditions/acme/job_good/amazon.jpg');
    const meta = await sharp(amazon).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 1000, height: 1000, hasAlpha: false });
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

    const web = await sharp(await storage.getBuffer('renditions/acme/job_good/web.webp')).metadata();
    expect(web).toMatchObject({ format: 'webp', width: 1200, height: 800, hasAlpha: true });
    const thumb = await sharp(await storage.getBuffer('renditions/acme/job_good/thumb.png')).metadata();
    expect(thumb).toMatchObject({ format: 'png', width: 200, height: 133, hasAlpha: true });
  });

  it('writes the same keys and bytes when the job runs again', async () => {
    const cutout = await goodCutout();
    const first = await outputs.make(record('job_twice'), cutout);
    const before = await storage.getBuffer('renditions/acme/job_twice/amazon.jpg');
    const second = await outputs.make(record('job_twice'), cutout);
    expect(second).toEqual(first);
    expect((await storage.getBuffer('renditions/acme/job_twice/amazon.jpg')).equals(before)).toBe(true);
  });

  it('uses a brand colour behind the product and a canvas of a given size', async () => {
    const made = await outputs.make(
      record('job_brand', [
        {
          name: 'banner',
          format: 'jpeg',
          background: '#102030',
          crop: 'subject',
          padding: 0.1,
          canvas: { width: 900, height: 300 },
        },
      ]),
      await goodCutout(),
    );
    expect(made.renditions?.banner).toMatchObject({ width: 900, height: 300, upscaled: false });
    const banner = await storage.getBuffer('renditions/acme/job_brand/banner.jpg');
    const [corner] = await cornerColours(banner);
    for (const [channel, expected] of corner!.map((value, i) => [value, [0x10, 0x20, 0x30][i]!]))
      expect(Math.abs(channel! - expected!)).toBeLessThanOrEqual(2);
  });

  it('flags a product that touches the frame', async () => {
    const made = await outputs.make(
      record('job_cut', []),
      await cutoutPng({ width: 1200, height: 800, box: { left: 400, top: 300, width: 400, height: 500 } }),
    );
    expect(made.quality?.flags).toEqual(['subject_cut_off']);
    // 400 of the bottom edge's 1200 pixels, measured on a 512-pixel sample.
    expect(made.quality?.edgeContact).toBeCloseTo(1 / 3, 2);
    expect(made.qualityFlagged).toBe(1);
    expect(made.renditions).toBeUndefined();
  });

  it('flags an empty cutout, and fails only the rendition cropped to its subject', async () => {
    const made = await outputs.make(record('job_empty'), await cutoutPng({ width: 1200, height: 800 }));
    expect(made.quality).toMatchObject({ flags: ['empty_cutout'], subjectCoverage: 0 });
    expect(made.renditions?.amazon).toEqual({ error: 'the cutout is empty: there is no product to crop to' });
    expect(made.renditions?.web).toMatchObject({ key: 'renditions/acme/job_empty/web.webp', width: 1200 });
    expect(await storage.head('renditions/acme/job_empty/amazon.jpg')).toBeNull();
  });

  it('flags an unchanged photo as background_not_removed', async () => {
    const made = await outputs.make(record('job_unchanged', []), await unchangedPng(1200, 800));
    expect(made.quality).toEqual({
      flags: ['background_not_removed'],
      subjectCoverage: 1,
      edgeContact: 1,
      semitransparentShare: 0,
    });
  });

  it('flags a ghostly product and a tiny one', async () => {
    const ghost = await outputs.make(
      record('job_ghost', []),
      await cutoutPng({ width: 1200, height: 800, box: { left: 400, top: 200, width: 400, height: 400 }, alpha: 0.4 }),
    );
    expect(ghost.quality?.flags).toEqual(['mostly_semitransparent']);
    const tiny = await outputs.make(
      record('job_tiny', []),
      await cutoutPng({ width: 1200, height: 800, box: { left: 580, top: 380, width: 80, height: 60 } }),
    );
    expect(tiny.quality?.flags).toEqual(['tiny_subject']);
  });

  it('keeps the measure it is given for a reused cutout', async () => {
    const quality = {
      flags: ['tiny_subject' as const],
      subjectCoverage: 0.01,
      edgeContact: 0,
      semitransparentShare: 0,
    };
    expect((await outputs.make(record('job_reused', []), await goodCutout(), { quality })).quality).toBe(quality);
  });

  it('decodes only as many cutouts at once as it has slots, however many jobs ask', async () => {
    let inFlight = 0;
    let most = 0;
    const slow: Storage = {
      ...storage,
      async putBuffer(_key, body, contentType) {
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 30));
        inFlight -= 1;
        return { bytes: body.length, contentType };
      },
    };
    const concurrentJobs = async (decodeSlots: number) => {
      most = 0;
      const gated = makeCutoutOutputs({
        storage: slow,
        maxPixels: 50_000_000,
        thresholds: DEFAULT_QUALITY_THRESHOLDS,
        decodeSlots,
        log: createLogger({ level: 'silent', name: 'test' }),
      });
      const cutout = await goodCutout();
      await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          gated.make(record(`job_gate_${i}`, [{ name: 'web', preset: 'web' }]), cutout),
        ),
      );
      return most;
    };
    expect(await concurrentJobs(1)).toBe(1);
    expect(await concurrentJobs(4)).toBeGreaterThan(1);
  });

  it('records why no rendition was made of a cutout above MAX_IMAGE_PIXELS', async () => {
    const small = makeCutoutOutputs({
      storage,
      maxPixels: 500_000,
      thresholds: DEFAULT_QUALITY_THRESHOLDS,
      decodeSlots: 2,
      log: createLogger({ level: 'silent', name: 'test' }),
    });
    const made = await small.make(record('job_huge', [{ name: 'web', preset: 'web' }]), await goodCutout());
    expect(made.renditions).toEqual({ web: { error: 'the cutout is larger than 500000 pixels (MAX_IMAGE_PIXELS)' } });
    expect(made.quality).toBeUndefined();
  });
});
