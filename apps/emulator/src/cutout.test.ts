import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { NoForegroundError, NotAnImageError, removeBackground } from './cutout.ts';
import { productShot, readPng, RED, WHITE } from './test-support.ts';

describe('removeBackground', () => {
  for (const format of ['png', 'jpeg'] as const) {
    it(`makes the white background of a ${format} product shot transparent and keeps the red box`, async () => {
      const result = await readPng(await removeBackground(await productShot(format), { tolerance: 32 }));
      expect(result).toMatchObject({ format: 'png', width: 200, height: 160 });
      for (const [x, y] of [
        [0, 0],
        [199, 0],
        [0, 159],
        [199, 159],
        [30, 80],
      ] as const) {
        expect(result.pixel(x, y).a).toBe(0);
      }
      const centre = result.pixel(100, 80);
      expect(centre.a).toBe(255);
      expect(centre.r).toBeGreaterThan(200);
      expect(centre.g).toBeLessThan(60);
      expect(centre.b).toBeLessThan(60);
    });
  }

  it('keeps background-coloured regions that do not touch the border', async () => {
    // A red ring with a white hole: the hole is part of the product, not background.
    const ring = await sharp({ create: { width: 60, height: 60, channels: 3, background: RED } })
      .composite([{ input: { create: { width: 20, height: 20, channels: 3, background: WHITE } }, left: 20, top: 20 }])
      .png()
      .toBuffer();
    const shot = await sharp({ create: { width: 100, height: 100, channels: 3, background: WHITE } })
      .composite([{ input: ring, left: 20, top: 20 }])
      .png()
      .toBuffer();
    const result = await readPng(await removeBackground(shot, { tolerance: 32 }));
    expect(result.pixel(5, 5).a).toBe(0);
    expect(result.pixel(50, 50)).toEqual({ r: 255, g: 255, b: 255, a: 255 });
  });

  it('estimates the background colour from the border rather than assuming white', async () => {
    const shot = await sharp({ create: { width: 50, height: 50, channels: 3, background: { r: 40, g: 90, b: 200 } } })
      .composite([{ input: { create: { width: 10, height: 10, channels: 3, background: WHITE } }, left: 20, top: 20 }])
      .png()
      .toBuffer();
    const result = await readPng(await removeBackground(shot, { tolerance: 32 }));
    expect(result.pixel(0, 0).a).toBe(0);
    expect(result.pixel(25, 25).a).toBe(255);
  });

  it('treats colours within the tolerance as background', async () => {
    // Light grey (230) is ~43 away from white: kept at tolerance 32, removed at 50.
    const shot = await sharp({ create: { width: 60, height: 60, channels: 3, background: WHITE } })
      .composite([
        {
          input: { create: { width: 20, height: 20, channels: 3, background: { r: 230, g: 230, b: 230 } } },
          left: 20,
          top: 20,
        },
      ])
      .png()
      .toBuffer();
    expect((await readPng(await removeBackground(shot, { tolerance: 32 }))).pixel(30, 30).a).toBe(255);
    // At 50 nothing is left standing out: the white-shoe-on-a-white-floor case.
    await expect(removeBackground(shot, { tolerance: 50 })).rejects.toBeInstanceOf(NoForegroundError);
  });

  it('handles a 2000x2000 image without overflowing the stack', async () => {
    const shot = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: WHITE } })
      .composite([
        { input: { create: { width: 800, height: 800, channels: 3, background: RED } }, left: 600, top: 600 },
      ])
      .png()
      .toBuffer();
    const result = await readPng(await removeBackground(shot, { tolerance: 32 }));
    expect(result).toMatchObject({ width: 2000, height: 2000 });
    expect(result.pixel(1999, 1999).a).toBe(0);
    expect(result.pixel(1000, 1000).a).toBe(255);
  }, 30_000);

  it('answers NoForegroundError when nothing stands out from the background, down to one pixel', async () => {
    const dot = await sharp({ create: { width: 1, height: 1, channels: 3, background: WHITE } })
      .png()
      .toBuffer();
    await expect(removeBackground(dot, { tolerance: 32 })).rejects.toBeInstanceOf(NoForegroundError);
    const plain = await sharp({ create: { width: 80, height: 60, channels: 3, background: WHITE } })
      .jpeg()
      .toBuffer();
    await expect(removeBackground(plain, { tolerance: 32 })).rejects.toBeInstanceOf(NoForegroundError);
  });

  it('throws NotAnImageError for bytes that are not an image', async () => {
    await expect(removeBackground(Buffer.from('definitely not a picture'), { tolerance: 32 })).rejects.toBeInstanceOf(
      NotAnImageError,
    );
  });

  it('throws NotAnImageError above the pixel limit', async () => {
    await expect(removeBackground(await productShot(), { tolerance: 32, maxPixels: 100 })).rejects.toBeInstanceOf(
      NotAnImageError,
    );
  });
});
