import { MAX_RENDITION_SIDE, type RenditionPlan } from '@cutout/shared/renditions';

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}
export interface Size {
  width: number;
  height: number;
}

/** Where the product goes on a rendition's canvas: what to cut from the cutout, its size there, and the canvas. */
export interface Layout {
  /** The part of the cutout the rendition shows (all of it unless cropped). */
  source: Box;
  product: Size;
  canvas: Size;
  /** The product's top-left corner on the canvas (it is centred). */
  offset: { left: number; top: number };
  /** The product is shown larger than the cutout's own pixels. */
  upscaled: boolean;
}

/** A rendition that cannot be made from this cutout, with the reason the job shows. */
export class RenditionError extends Error {
  override readonly name = 'RenditionError';
}

/** Alpha (of 255) from which a pixel belongs to the product when cropping: faint edge noise does not widen the crop. */
const SUBJECT_ALPHA = 64;

/** The bounding box of the pixels at least SUBJECT_ALPHA opaque in raw RGBA; null when there is none. */
export function subjectBox(rgba: Uint8Array, { width, height }: Size): Box | null {
  let minX = width,
    minY = height,
    maxX = -1,
    maxY = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width * 4;
    for (let x = 0; x < width; x++) {
      if (rgba[row + x * 4 + 3]! < SUBJECT_ALPHA) continue;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      maxY = y;
    }
  }
  return maxX < 0 ? null : { left: minX, top: minY, width: maxX - minX + 1, height: maxY - minY + 1 };
}

/**
 * Lays a rendition out: the content (the whole cutout, or its subject), a margin of
 * `padding` × the canvas on every side, the canvas's shape, then its long side held within
 * max_size / min_size (and MAX_RENDITION_SIDE). A canvas of a given size fits the content
 * inside its margins instead.
 */
export function layoutRendition(plan: RenditionPlan, image: Size, subject: Box | null): Layout {
  const source = plan.crop === 'subject' ? subject : { left: 0, top: 0, ...image };
  if (!source) throw new RenditionError('the cutout is empty: there is no product to crop to');
  const inner = 1 - 2 * plan.padding;
  let canvas: Size;
  let scale: number;
  if (typeof plan.canvas === 'object') {
    canvas = plan.canvas;
    scale = Math.min((canvas.width * inner) / source.width, (canvas.height * inner) / source.height);
  } else {
    const natural =
      plan.canvas === 'square'
        ? {
            width: Math.max(source.width, source.height) / inner,
            height: Math.max(source.width, source.height) / inner,
          }
        : { width: source.width / inner, height: source.height / inner };
    const long = Math.max(natural.width, natural.height);
    let target = long;
    if (plan.maxSize !== null && target > plan.maxSize) target = plan.maxSize;
    if (plan.minSize !== null && target < plan.minSize) target = plan.minSize;
    target = Math.min(target, MAX_RENDITION_SIDE);
    scale = target / long;
    canvas = {
      width: Math.max(1, Math.round(natural.width * scale)),
      height: Math.max(1, Math.round(natural.height * scale)),
    };
  }
  const product = {
    width: Math.min(canvas.width, Math.max(1, Math.round(source.width * scale))),
    height: Math.min(canvas.height, Math.max(1, Math.round(source.height * scale))),
  };
  return {
    source,
    product,
    canvas,
    offset: {
      left: Math.floor((canvas.width - product.width) / 2),
      top: Math.floor((canvas.height - product.height) / 2),
    },
    upscaled: product.width > source.width || product.height > source.height,
  };
}
