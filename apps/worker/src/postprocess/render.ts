import sharp, { type Sharp } from 'sharp';
import type { RenditionPlan } from '@cutout/shared/renditions';
import { QUALITY_SAMPLE_SIDE } from './quality.ts';
import type { Layout, Size } from './layout.ts';

/** A cutout decoded once into 8-bit sRGB with alpha: every rendition of a job is cut from it. */
export interface DecodedCutout extends Size {
  rgba: Buffer;
}

/** `maxPixels` (MAX_IMAGE_PIXELS) refuses a cutout larger than any original the API accepts, before it is decoded. */
export async function decodeCutout(body: Buffer, maxPixels: number): Promise<DecodedCutout> {
  const { data, info } = await sharp(body, { limitInputPixels: maxPixels })
    .ensureAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 4) throw new Error(`decoded cutout has ${info.channels} channels`);
  return { rgba: data, width: info.width, height: info.height };
}

export const rawInput = ({ rgba, width, height }: DecodedCutout) =>
  sharp(rgba, { raw: { width, height, channels: 4 } });

/**
 * The alpha channel scaled to at most QUALITY_SAMPLE_SIDE on its long side, nearest
 * neighbour: a 3000 × 2000 cutout is measured on 512 × 341 of its own pixels.
 */
export async function sampleAlpha(input: Sharp): Promise<{ alpha: Uint8Array } & Size> {
  const { data, info } = await input
    .resize(QUALITY_SAMPLE_SIDE, QUALITY_SAMPLE_SIDE, { fit: 'inside', withoutEnlargement: true, kernel: 'nearest' })
    .ensureAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const alpha = new Uint8Array(info.width * info.height);
  for (let i = 0; i < alpha.length; i++) alpha[i] = data[i * info.channels + info.channels - 1]!;
  return { alpha, width: info.width, height: info.height };
}

function colourOf(background: string): { r: number; g: number; b: number; alpha: number } {
  if (background === 'transparent') return { r: 0, g: 0, b: 0, alpha: 0 };
  const value = Number.parseInt(background.slice(1), 16);
  return { r: value >> 16, g: (value >> 8) & 0xff, b: value & 0xff, alpha: 1 };
}

/** One rendition, encoded, through one sharp pipeline over the decoded cutout. */
export async function renderRendition(
  cutout: DecodedCutout,
  plan: RenditionPlan,
  layout: Layout,
): Promise<{ data: Buffer } & Size> {
  const { source, product, canvas, offset } = layout;
  let image = rawInput(cutout);
  if (source.width !== cutout.width || source.height !== cutout.height) image = image.extract(source);
  if (product.width !== source.width || product.height !== source.height)
    image = image.resize(product.width, product.height, { fit: 'fill' });
  const background = colourOf(plan.background);
  const right = canvas.width - product.width - offset.left;
  const bottom = canvas.height - product.height - offset.top;
  if (offset.left || offset.top || right || bottom)
    image = image.extend({ top: offset.top, bottom, left: offset.left, right, background });
  // A colour behind the product: its soft edges are blended onto it, and no alpha is kept.
  if (background.alpha === 1) image = image.flatten({ background });
  if (plan.format === 'jpeg') image = image.jpeg({ quality: plan.quality });
  else if (plan.format === 'webp') image = image.webp({ quality: plan.quality });
  else image = image.png();
  const { data, info } = await image.toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}
