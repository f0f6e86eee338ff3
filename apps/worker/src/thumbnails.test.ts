import { Readable, Writable } from 'node:stream';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, makeStorage, readableFrom, type Storage } from '@cutout/shared/infra';
import { s3ClientFor, testS3, type TestS3 } from '../../../test/helpers/services.ts';
import { makeThumbnailer, type Thumbnailer } from './thumbnails.ts';

const SIZE = 320;

let s3: TestS3;
let storage: Storage;
let thumbnails: Thumbnailer;
const logged: Record<string, any>[] = [];

beforeAll(async () => {
  s3 = await testS3();
  storage = makeStorage({ client: s3ClientFor(s3), bucket: s3.bucket });
  await storage.ensureBucket();
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logged.push(JSON.parse(chunk.toString()));
      callback();
    },
  });
  thumbnails = makeThumbnailer({
    storage,
    size: SIZE,
    log: createLogger({ level: 'warn', name: 'test' }, destination),
  });
});

afterAll(async () => {
  await s3?.close();
});

/** A half-transparent cutout: a red square on a transparent canvas. */
const cutoutPng = () =>
  sharp({ create: { width: 800, height: 600, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
    .composite([
      {
        input: { create: { width: 200, height: 200, channels: 4, background: { r: 220, g: 20, b: 30, alpha: 1 } } },
        left: 300,
        top: 200,
      },
    ])
    .png()
    .toBuffer();

const bigJpeg = () =>
  sharp({ create: { width: 4000, height: 1500, channels: 3, background: { r: 250, g: 250, b: 250 } } })
    .jpeg()
    .toBuffer();

async function storedThumbnail(key: string) {
  expect(await storage.head(key)).toMatchObject({ contentType: 'image/webp' });
  return sharp(await storage.getBuffer(key)).metadata();
}

describe('thumbnails', () => {
  it('makes a WebP of a cutout in memory that fits the size and keeps its transparency', async () => {
    const key = 'thumbs/acme/job_png/cutout.webp';
    expect(await thumbnails.fromBuffer(await cutoutPng(), key, 'job_png')).toBe(key);
    const meta = await storedThumbnail(key);
    expect(meta).toMatchObject({ format: 'webp', width: 320, height: 240, hasAlpha: true });
    const { data, info } = await sharp(await storage.getBuffer(key))
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const alpha = (x: number, y: number) => data[(y * info.width + x) * info.channels + 3];
    expect(alpha(0, 0)).toBe(0);
    expect(alpha(160, 120)).toBe(255);
  });

  it('makes one of a large original streamed from S3', async () => {
    await storage.putStream('originals/acme/job_jpg', readableFrom(await bigJpeg()), 'image/jpeg');
    const key = 'thumbs/acme/job_jpg/original.webp';
    expect(await thumbnails.fromStored('originals/acme/job_jpg', key, 'job_jpg')).toBe(key);
    expect(await storedThumbnail(key)).toMatchObject({ format: 'webp', width: 320, height: 120 });
  });

  it('never enlarges a small image', async () => {
    const small = await sharp({ create: { width: 100, height: 50, channels: 3, background: { r: 1, g: 2, b: 3 } } })
      .png()
      .toBuffer();
    const key = 'thumbs/acme/job_small/cutout.webp';
    expect(await thumbnails.fromBuffer(small, key, 'job_small')).toBe(key);
    expect(await storedThumbnail(key)).toMatchObject({ width: 100, height: 50 });
  });

  it('answers undefined, stores nothing and logs a warning for what is not an image', async () => {
    logged.length = 0;
    const text = Buffer.from('not an image at all');
    await storage.putBuffer('originals/acme/job_txt', text, 'text/plain');
    await expect(thumbnails.fromBuffer(text, 'thumbs/acme/job_txt/cutout.webp', 'job_txt')).resolves.toBeUndefined();
    await expect(
      thumbnails.fromStored('originals/acme/job_txt', 'thumbs/acme/job_txt/original.webp', 'job_txt'),
    ).resolves.toBeUndefined();
    await expect(
      thumbnails.fromBuffer(Buffer.alloc(0), 'thumbs/acme/job_txt/cutout.webp', 'job_txt'),
    ).resolves.toBeUndefined();
    expect(await storage.head('thumbs/acme/job_txt/cutout.webp')).toBeNull();
    expect(await storage.head('thumbs/acme/job_txt/original.webp')).toBeNull();
    expect(logged).toHaveLength(3);
    expect(logged.every((line) => line.level === 40 && line.job_id === 'job_txt')).toBe(true);
  });

  it('answers undefined for an original missing from S3, and for a failed copy', async () => {
    await expect(
      thumbnails.fromStored('originals/acme/gone', 'thumbs/acme/gone/original.webp', 'gone'),
    ).resolves.toBeUndefined();
    await expect(
      thumbnails.copy('thumbs/acme/gone/cutout.webp', 'thumbs/acme/other/cutout.webp', 'other'),
    ).resolves.toBeUndefined();
    expect(await storage.head('thumbs/acme/gone/original.webp')).toBeNull();
  });

  it('answers undefined, without hanging, when the download breaks off', async () => {
    const jpeg = await bigJpeg();
    const broken: Storage = {
      ...storage,
      getStream: async () =>
        Readable.from(
          (async function* () {
            yield jpeg.subarray(0, 1000);
            throw new Error('connection reset');
          })(),
        ),
    };
    const thumbnailer = makeThumbnailer({
      storage: broken,
      size: SIZE,
      log: createLogger({ level: 'silent', name: 'test' }),
    });
    await expect(
      thumbnailer.fromStored('originals/acme/job_jpg', 'thumbs/acme/job_broken/original.webp', 'job_broken'),
    ).resolves.toBeUndefined();
    expect(await storage.head('thumbs/acme/job_broken/original.webp')).toBeNull();
  });

  it('copies an existing thumbnail', async () => {
    const from = 'thumbs/acme/job_source/cutout.webp';
    await thumbnails.fromBuffer(await cutoutPng(), from, 'job_source');
    expect(await thumbnails.copy(from, 'thumbs/acme/job_copy/cutout.webp', 'job_copy')).toBe(
      'thumbs/acme/job_copy/cutout.webp',
    );
    expect(await storedThumbnail('thumbs/acme/job_copy/cutout.webp')).toMatchObject({ format: 'webp', width: 320 });
  });
});
