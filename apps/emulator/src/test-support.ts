/** Helpers shared by the emulator's tests (not used at run time). */
import sharp from 'sharp';
import { FormData, request } from 'undici';

export const WHITE = { r: 255, g: 255, b: 255 };
export const RED = { r: 255, g: 0, b: 0 };

/** The classic product shot: 200x160, white background, a red 80x60 box in the middle. */
export async function productShot(format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const box = await sharp({ create: { width: 80, height: 60, channels: 3, background: RED } })
    .png()
    .toBuffer();
  const image = sharp({ create: { width: 200, height: 160, channels: 3, background: WHITE } }).composite([
    { input: box, left: 60, top: 50 },
  ]);
  return format === 'png' ? image.png().toBuffer() : image.jpeg({ quality: 90 }).toBuffer();
}

export interface Pixel {
  r: number;
  g: number;
  b: number;
  a: number;
}

export async function readPng(
  png: Buffer,
): Promise<{ width: number; height: number; format: string; pixel(x: number, y: number): Pixel }> {
  const meta = await sharp(png).metadata();
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    format: meta.format,
    pixel: (x, y) => {
      const o = (y * info.width + x) * 4;
      return { r: data[o]!, g: data[o + 1]!, b: data[o + 2]!, a: data[o + 3]! };
    },
  };
}

/** A ByByBG-style form: the image in `file` plus any option fields. */
export function imageForm(
  image: Buffer | undefined,
  options: Record<string, string> = {},
  fileField = 'file',
): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(options)) form.append(name, value);
  if (image) form.append(fileField, new Blob([new Uint8Array(image)], { type: 'image/png' }), 'shot.png');
  return form;
}

export interface PostOptions {
  key?: string;
  form?: FormData;
  headersTimeout?: number;
}

export async function postRemoveBg(baseUrl: string, { key, form, headersTimeout }: PostOptions) {
  return request(`${baseUrl}/v1/remove-bg`, {
    method: 'POST',
    headers: key === undefined ? {} : { 'x-api-key': key },
    body: form ?? imageForm(undefined),
    ...(headersTimeout === undefined ? {} : { headersTimeout }),
  });
}

/** Body of a response as a Buffer (consumes it). */
export async function bodyBuffer(response: { body: { arrayBuffer(): Promise<ArrayBuffer> } }): Promise<Buffer> {
  return Buffer.from(await response.body.arrayBuffer());
}

/** A fake clock for the token bucket: tests move time instead of sleeping. */
export function fakeClock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let time = start;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}
