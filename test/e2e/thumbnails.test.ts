import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { thumbKey } from '@cutout/shared/infra';
import type { JobRecord } from '@cutout/shared/stores';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { settle, setFaults, submitPhoto } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';

/** A photo larger than a thumbnail, so the thumbnails are scaled down. */
const LARGE_SHOT = { width: 1200, height: 900, object: { left: 400, top: 250, width: 400, height: 400 } };

describe('thumbnails of originals and cutouts', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await startSystem();
  });
  afterAll(async () => {
    await system?.close();
  });

  const record = async (id: string): Promise<JobRecord> => (await system.services.jobs.get(id))!;

  /** The stored thumbnail's metadata; it must be a WebP within the default 320 px. */
  async function thumbnail(key: string) {
    expect(await system.services.storage.head(key)).toMatchObject({ contentType: 'image/webp' });
    const meta = await sharp(await system.services.storage.getBuffer(key)).metadata();
    expect(meta.format).toBe('webp');
    expect(Math.max(meta.width, meta.height)).toBeLessThanOrEqual(320);
    return meta;
  }

  it('stores both thumbnails of a succeeded job, and copies them to a duplicate of it', async () => {
    const photo = await productImage('png', LARGE_SHOT, 1);
    const first = await submitPhoto(system, photo);
    expect((await settle(system, [first]))[0]!.status).toBe('succeeded');
    const done = await record(first);
    expect(done.originalThumbKey).toBe(thumbKey('acme', first, 'original'));
    expect(done.resultThumbKey).toBe(thumbKey('acme', first, 'cutout'));
    expect(await thumbnail(done.originalThumbKey!)).toMatchObject({ width: 320, height: 240 });
    expect(await thumbnail(done.resultThumbKey!)).toMatchObject({ width: 320, height: 240, hasAlpha: true });

    // The same image again: its result is reused, and so are the thumbnails, under its own keys.
    const second = await submitPhoto(system, photo);
    const [view] = await settle(system, [second]);
    expect(view).toMatchObject({ status: 'succeeded', credits_saved: 1 });
    const reused = await record(second);
    expect(reused.originalThumbKey).toBe(thumbKey('acme', second, 'original'));
    expect(reused.resultThumbKey).toBe(thumbKey('acme', second, 'cutout'));
    await thumbnail(reused.originalThumbKey!);
    await thumbnail(reused.resultThumbKey!);
  });

  it('stores only the original thumbnail of a job ByByBG rejects', async () => {
    await setFaults(system, { responseMode: 'bad' });
    try {
      const id = await submitPhoto(system, await productImage('png', PRODUCT_SHOT, 2));
      const [view] = await settle(system, [id]);
      expect(view).toMatchObject({ status: 'failed', error: { code: 'upstream_bad_response' } });
      const failed = await record(id);
      expect(failed.originalThumbKey).toBe(thumbKey('acme', id, 'original'));
      expect(failed.resultThumbKey).toBeUndefined();
      // The 240×180 photo is below 320 px: never enlarged.
      expect(await thumbnail(failed.originalThumbKey!)).toMatchObject({ width: 240, height: 180 });
      expect(await system.services.storage.head(thumbKey('acme', id, 'cutout'))).toBeNull();
    } finally {
      await setFaults(system, { responseMode: 'image' });
    }
  });
});

describe('thumbnails turned off', () => {
  it('makes none when THUMBNAIL_SIZE is 0', async () => {
    const system = await startSystem({ env: { THUMBNAIL_SIZE: '0' } });
    try {
      const id = await submitPhoto(system, await productImage('png', PRODUCT_SHOT, 3));
      expect((await settle(system, [id]))[0]!.status).toBe('succeeded');
      const done = (await system.services.jobs.get(id))!;
      expect(done.originalThumbKey).toBeUndefined();
      expect(done.resultThumbKey).toBeUndefined();
      expect(await system.services.storage.head(thumbKey('acme', id, 'original'))).toBeNull();
    } finally {
      await system.close();
    }
  });
});
