import sharp from 'sharp';
import { cutoutPixels, decodeRgba, encodePng, type CutoutOptions, type RgbaImage } from './cutout.ts';

/**
 * What the emulator answers with, for tests of Cutout's quality checks: `real` is its
 * own background removal; the others are the failures a real service shows now and then.
 */
export const CUTOUT_MODES = ['real', 'empty', 'unchanged', 'cut_off', 'ghost'] as const;
export type CutoutMode = (typeof CUTOUT_MODES)[number];

/** How much of the product's opacity a ghostly cutout keeps. */
const GHOST_OPACITY = 0.4;

export async function cutoutFor(mode: CutoutMode, upload: Buffer, options: CutoutOptions): Promise<Buffer> {
  switch (mode) {
    case 'real':
      return encodePng(await cutoutPixels(upload, options));
    case 'empty': {
      // Everything removed, product included: a 200 with a fully transparent image.
      const image = await decodeRgba(upload, options.maxPixels);
      for (let alpha = 3; alpha < image.data.length; alpha += 4) image.data[alpha] = 0;
      return encodePng(image);
    }
    case 'unchanged': {
      // Nothing removed: the photo back as an opaque PNG, without an alpha channel.
      const image = await decodeRgba(upload, options.maxPixels);
      return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 4 } })
        .removeAlpha()
        .png()
        .toBuffer();
    }
    case 'cut_off':
      return encodePng(await withoutLowerHalf(await cutoutPixels(upload, options)));
    case 'ghost': {
      const image = await cutoutPixels(upload, options);
      for (let alpha = 3; alpha < image.data.length; alpha += 4)
        image.data[alpha] = Math.round(image.data[alpha]! * GHOST_OPACITY);
      return encodePng(image);
    }
  }
}

/** The frame ends halfway down the product, so the product runs into its bottom edge. */
async function withoutLowerHalf(image: RgbaImage): Promise<RgbaImage> {
  const { data, width, height } = image;
  let top = -1,
    bottom = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4 + 3] === 0) continue;
      if (top < 0) top = y;
      bottom = y;
      break;
    }
  }
  const keep = Math.max(1, Math.ceil((top + bottom + 1) / 2));
  return { data: data.subarray(0, keep * width * 4), width, height: keep };
}
