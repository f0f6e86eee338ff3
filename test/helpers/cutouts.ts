import sharp from 'sharp';

/**
 * Cutouts as ByByBG might return them, drawn here: a product (a red rectangle, `alpha`
 * opaque) at `box` on a transparent frame. `unchanged` is the photo itself, every pixel opaque.
 */
export interface CutoutShape {
  width: number;
  height: number;
  box?: { left: number; top: number; width: number; height: number };
  alpha?: number;
}

export async function cutoutPng({ width, height, box, alpha = 1 }: CutoutShape): Promise<Buffer> {
  const frame = sharp({ create: { width, height, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } });
  if (!box) return frame.png().toBuffer();
  const product = await sharp({
    create: { width: box.width, height: box.height, channels: 4, background: { r: 200, g: 30, b: 40, alpha } },
  })
    .png()
    .toBuffer();
  return frame
    .composite([{ input: product, left: box.left, top: box.top }])
    .png()
    .toBuffer();
}

/** The photo back unchanged: an opaque PNG (no alpha channel at all). */
export async function unchangedPng(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 245, g: 245, b: 240 } } })
    .composite([
      {
        input: await cutoutPng({
          width: width / 2,
          height: height / 2,
          box: { left: 0, top: 0, width: width / 2, height: height / 2 },
        }),
        left: width / 4,
        top: height / 4,
      },
    ])
    .png()
    .toBuffer();
}

/** The bounding box of the pixels of a decoded image that differ from pure white by more than `tolerance`. */
export async function nonWhiteBox(
  image: Buffer,
  tolerance = 24,
): Promise<{ left: number; top: number; width: number; height: number } | null> {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let minX = info.width,
    minY = info.height,
    maxX = -1,
    maxY = -1;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      const o = (y * info.width + x) * info.channels;
      if (255 - data[o]! <= tolerance && 255 - data[o + 1]! <= tolerance && 255 - data[o + 2]! <= tolerance) continue;
      minX = Math.min(minX, x);
      maxX = Math.max(maxX, x);
      minY = Math.min(minY, y);
      maxY = y;
    }
  }
  return maxX < 0 ? null : { left: minX, top: minY, width: maxX - minX + 1, height: maxY - minY + 1 };
}

/** RGB of the four corner pixels of a decoded image. */
export async function cornerColours(image: Buffer): Promise<number[][]> {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => [
    ...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3),
  ];
  return [at(0, 0), at(info.width - 1, 0), at(0, info.height - 1), at(info.width - 1, info.height - 1)];
}
