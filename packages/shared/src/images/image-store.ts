import { Readable } from 'node:stream';
import type { Storage, StreamedObject } from '../infra/storage.ts';
import { ImageInputError } from './image-error.ts';
import { ACCEPTED_TYPES, inspectHead } from './image-check.ts';
import { endFinderFor, type EndFinder } from './image-end.ts';

/** Enough bytes for file-type to recognise any format it knows. */
const SNIFF_BYTES = 4100;
/** JPEG dimensions sit after EXIF data; a header longer than this is not a photo we take. */
const MAX_HEADER_BYTES = 256 * 1024;

export interface ImageSource {
  chunks: AsyncIterator<Buffer>;
  /** True when the source stopped at the size limit rather than at its end. */
  truncated(): boolean;
  /** Stops reading a source that is refused, so the request can finish. */
  discard(): void;
}

export interface ImageTarget {
  storage: Storage;
  objectKey: string;
  maxBytes: number;
  maxPixels: number;
}

/**
 * Checks an image as it streams by and stores it in S3: type by magic bytes, dimensions
 * from the header alone (a pixel bomb is refused before anything decodes it), the size
 * limit, and that the file is complete (its structure walked to its end marker as it
 * streams; bytes after the end are kept and allowed). The caller deletes the object if
 * this throws.
 */
export async function storeImage(
  source: ImageSource,
  { storage, objectKey, maxBytes, maxPixels }: ImageTarget,
): Promise<StreamedObject> {
  const iterator = source.chunks;
  let head = await readHead(iterator, SNIFF_BYTES);
  if (head.length === 0) throw new ImageInputError(400, 'empty_file', 'The image is empty');
  let image = await inspectHead(head);
  if (!image || !ACCEPTED_TYPES.has(image.mime)) {
    source.discard();
    throw new ImageInputError(415, 'unsupported_media_type', 'The file is not a JPEG, PNG or WebP image');
  }
  if (image.width === undefined) {
    head = Buffer.concat([head, await readHead(iterator, MAX_HEADER_BYTES - head.length)]);
    image = (await inspectHead(head)) ?? image;
  }
  if (!image.width || !image.height) {
    source.discard();
    throw new ImageInputError(422, 'invalid_image', `The ${image.mime} header is damaged: no dimensions found`);
  }
  if (image.width * image.height > maxPixels) {
    source.discard();
    throw new ImageInputError(
      422,
      'image_too_large',
      `The image is ${image.width}×${image.height} pixels; the limit is ${maxPixels} pixels`,
    );
  }
  const end = endFinderFor(image.mime)!;
  const stored = await storage.putStream(objectKey, Readable.from(replay(head, iterator, end)), image.mime);
  if (source.truncated()) {
    throw new ImageInputError(413, 'file_too_large', `The image is larger than the limit of ${maxBytes} bytes`);
  }
  const state = end.state();
  if (state === 'damaged')
    throw new ImageInputError(
      422,
      'invalid_image',
      `The ${image.mime} file is damaged: its structure breaks off before the end of the image`,
    );
  if (state === 'open')
    throw new ImageInputError(
      422,
      'image_truncated',
      `The ${image.mime} file ends before the image does; was the upload cut short?`,
    );
  return stored;
}

async function readHead(iterator: AsyncIterator<Buffer>, atLeast: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < atLeast) {
    const { value, done } = await iterator.next();
    if (done) break;
    chunks.push(value);
    length += value.length;
  }
  return Buffer.concat(chunks);
}

/** Yields the head, then the rest of the upload, walking each chunk for the image's end. */
async function* replay(head: Buffer, iterator: AsyncIterator<Buffer>, end: EndFinder): AsyncGenerator<Buffer> {
  end.push(head);
  yield head;
  for (;;) {
    const { value, done } = await iterator.next();
    if (done) return;
    end.push(value);
    yield value;
  }
}
