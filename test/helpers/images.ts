import sharp from 'sharp';

export interface ProductShot {
  width: number;
  height: number;
  object: { left: number; top: number; width: number; height: number };
}

export const PRODUCT_SHOT: ProductShot = {
  width: 240,
  height: 180,
  object: { left: 80, top: 50, width: 80, height: 80 },
};

/**
 * A product photo: a red object on a white studio background. `variant` shifts the
 * object's colour, so several photos differ byte for byte (duplicates are deduplicated).
 */
export async function productImage(
  format: 'jpeg' | 'png' = 'jpeg',
  shot: ProductShot = PRODUCT_SHOT,
  variant = 0,
): Promise<Buffer> {
  const { width, height, object } = shot;
  const colour = {
    r: 200 - (variant % 100),
    g: 20 + (Math.floor(variant / 100) % 100),
    b: 30 + (Math.floor(variant / 10_000) % 100),
  };
  const red = await sharp({ create: { width: object.width, height: object.height, channels: 3, background: colour } })
    .png()
    .toBuffer();
  const image = sharp({ create: { width, height, channels: 3, background: { r: 255, g: 255, b: 255 } } }).composite([
    { input: red, left: object.left, top: object.top },
  ]);
  return format === 'jpeg' ? image.jpeg({ quality: 95 }).toBuffer() : image.png().toBuffer();
}

/** Alpha of the pixel at (x, y). */
export async function alphaAt(png: Buffer, points: readonly [number, number][]): Promise<number[]> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return points.map(([x, y]) => data[(y * info.width + x) * info.channels + 3]!);
}

/**
 * A PNG whose structure is whole (its IHDR, one IDAT of garbage, IEND; CRCs left zero) but
 * whose pixels cannot be decoded: it passes the API's checks and only ByByBG refuses it.
 */
export function undecodablePng(png: Buffer): Buffer {
  const idat = Buffer.concat([
    Buffer.from([0, 0, 0x07, 0xd0]),
    Buffer.from('IDAT'),
    Buffer.alloc(2000, 0x41),
    Buffer.alloc(4),
  ]);
  return Buffer.concat([png.subarray(0, 33), idat, Buffer.from('0000000049454e44ae426082', 'hex')]);
}
