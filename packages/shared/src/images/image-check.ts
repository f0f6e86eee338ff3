import { fileTypeFromBuffer } from 'file-type';
import { imageSize } from 'image-size';

/** Image types ByByBG accepts, identified by magic bytes, never by the client's Content-Type. */
export const ACCEPTED_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp']);

export interface ImageHead {
  mime: string;
  width?: number;
  height?: number;
}

/** Type from the magic bytes; dimensions when the header bytes so far contain them. */
export async function inspectHead(head: Buffer): Promise<ImageHead | undefined> {
  const detected = await fileTypeFromBuffer(head);
  if (!detected) return undefined;
  try {
    // A copy with a buffer of its own: on a pooled Buffer a parser reading past a short
    // header would read neighbouring memory instead of failing.
    const { width, height } = imageSize(new Uint8Array(head));
    return { mime: detected.mime, width, height };
  } catch {
    return { mime: detected.mime };
  }
}
