import sharp from 'sharp';

/** The upload is not an image sharp can decode: a client error (400), never retried. */
export class NotAnImageError extends Error {
  override readonly name = 'NotAnImageError';
}

/** Nothing stands out from the background (a white shoe on a white floor): ByByBG answers 400, as here. */
export class NoForegroundError extends Error {
  override readonly name = 'NoForegroundError';
}

export interface CutoutOptions {
  /** Euclidean RGB distance (0–441.7) within which a pixel counts as background. */
  tolerance: number;
  /** Refuse images above this many pixels (decompression bombs). Default: sharp's 268 M. */
  maxPixels?: number;
}

export interface RgbaImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * A non-ML background removal good enough for plain-background product shots: estimate the
 * background colour from the border, flood-fill from every border pixel over pixels within
 * `tolerance` of it, and make those transparent. Interior regions of the same colour that do
 * not touch the border (a white logo on a red box) stay opaque.
 */
export async function removeBackground(input: Buffer, options: CutoutOptions): Promise<Buffer> {
  return encodePng(await cutoutPixels(input, options));
}

/** The cutout's pixels before encoding (what the problem cutouts start from). */
export async function cutoutPixels(input: Buffer, options: CutoutOptions): Promise<RgbaImage> {
  const image = await decodeRgba(input, options.maxPixels);
  clearBorderBackground(image, options.tolerance);
  if (!hasOpaquePixel(image)) throw new NoForegroundError('could not identify a foreground object in the image');
  return image;
}

export const encodePng = (image: RgbaImage): Promise<Buffer> =>
  sharp(image.data, { raw: { width: image.width, height: image.height, channels: 4 } })
    .png()
    .toBuffer();

function hasOpaquePixel({ data }: RgbaImage): boolean {
  for (let alpha = 3; alpha < data.length; alpha += 4) if (data[alpha] !== 0) return true;
  return false;
}

export async function decodeRgba(input: Buffer, maxPixels: number | undefined): Promise<RgbaImage> {
  try {
    const { data, info } = await sharp(input, maxPixels === undefined ? {} : { limitInputPixels: maxPixels })
      // Phone photos carry EXIF rotation; the PNG we write drops EXIF, so apply it now.
      .autoOrient()
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
    };
  } catch (error) {
    throw new NotAnImageError(`file is not a decodable image: ${(error as Error).message}`, { cause: error });
  }
}

/** Indices of border pixels, each once (corners are not repeated), clockwise from the top left. */
function borderIndices(width: number, height: number): Int32Array {
  if (width === 1 || height === 1) return Int32Array.from({ length: width * height }, (_, i) => i);
  const out = new Int32Array(2 * width + 2 * (height - 2));
  let n = 0;
  for (let x = 0; x < width; x++) out[n++] = x;
  for (let y = 1; y < height - 1; y++) out[n++] = y * width + width - 1;
  for (let x = width - 1; x >= 0; x--) out[n++] = (height - 1) * width + x;
  for (let y = height - 2; y >= 1; y--) out[n++] = y * width;
  return out;
}

/**
 * The most common border colour, after quantizing to 5 bits per channel so JPEG noise does
 * not split one background into many colours; the result is the mean of the border pixels
 * in the winning bin. A median per channel would invent a colour for a two-tone border.
 */
function estimateBackground(image: RgbaImage): [number, number, number] {
  const { data, width, height } = image;
  const border = borderIndices(width, height);
  const bins = new Uint32Array(1 << 15);
  const binOf = (p: number): number =>
    ((data[p * 4]! >> 3) << 10) | ((data[p * 4 + 1]! >> 3) << 5) | (data[p * 4 + 2]! >> 3);
  // Already transparent border pixels say nothing about the colour to remove.
  const opaque = border.filter((p) => data[p * 4 + 3] !== 0);
  if (opaque.length === 0) return [0, 0, 0];
  let best = binOf(opaque[0]!);
  for (const p of opaque) {
    const bin = binOf(p);
    const count = bins[bin]! + 1;
    bins[bin] = count;
    if (count > bins[best]!) best = bin;
  }
  let r = 0,
    g = 0,
    b = 0,
    n = 0;
  for (const p of opaque) {
    if (binOf(p) !== best) continue;
    r += data[p * 4]!;
    g += data[p * 4 + 1]!;
    b += data[p * 4 + 2]!;
    n += 1;
  }
  return [r / n, g / n, b / n];
}

/**
 * Iterative 4-connected flood fill from the border (a FIFO queue in a typed array; each pixel
 * is queued at most once, so the queue never exceeds width × height and there is no recursion
 * to overflow the stack on large images). Pixels already fully transparent count as background.
 */
function clearBorderBackground(image: RgbaImage, tolerance: number): void {
  const { data, width, height } = image;
  if (width === 0 || height === 0) return;
  const [br, bg, bb] = estimateBackground(image);
  const maxDistanceSq = tolerance * tolerance;
  const isBackground = (p: number): boolean => {
    const o = p * 4;
    if (data[o + 3] === 0) return true;
    const dr = data[o]! - br,
      dg = data[o + 1]! - bg,
      db = data[o + 2]! - bb;
    return dr * dr + dg * dg + db * db <= maxDistanceSq;
  };

  const seen = new Uint8Array(width * height);
  const queue = new Int32Array(width * height);
  let head = 0,
    tail = 0;
  const visit = (p: number): void => {
    if (seen[p] === 1) return;
    seen[p] = 1;
    if (isBackground(p)) queue[tail++] = p;
  };

  for (const p of borderIndices(width, height)) visit(p);
  while (head < tail) {
    const p = queue[head++]!;
    data[p * 4 + 3] = 0;
    const x = p % width;
    if (x > 0) visit(p - 1);
    if (x < width - 1) visit(p + 1);
    if (p >= width) visit(p - width);
    if (p < width * (height - 1)) visit(p + width);
  }
}
