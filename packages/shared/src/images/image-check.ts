import { fileTypeFromBuffer } from 'file-type';
import { imageSize } from 'image-size';

/** Image types ByByBG accepts, identified by magic bytes, never by the client's Content-Type. */
export const ACCEPTED_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp']);

export interface ImageHead { mime: string; width?: number; height?: number }

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

const PNG_TRAILER = Buffer.from('0000000049454e44ae426082', 'hex');

/**
 * Whether the whole image arrived: PNG ends with its IEND chunk, JPEG with an EOI marker
 * (perhaps followed by padding), WebP's RIFF header states its own length.
 */
export function looksComplete(mime: string, head: Buffer, tail: Buffer, totalBytes: number): boolean {
  if (mime === 'image/png') return tail.subarray(-PNG_TRAILER.length).equals(PNG_TRAILER);
  if (mime === 'image/jpeg') return tail.subarray(-64).includes(Buffer.from([0xff, 0xd9]));
  if (mime === 'image/webp') return head.length >= 8 && head.readUInt32LE(4) + 8 <= totalBytes;
  return false;
}
