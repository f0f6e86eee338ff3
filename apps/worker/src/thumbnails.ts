import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import type { Logger, Storage } from '@cutout/shared/infra';

/** sharp's own default: the API refuses far smaller images already; this only stops a decode bomb. */
const MAX_INPUT_PIXELS = 0x3fff ** 2;

/**
 * Small WebP previews for the review page. Best effort: each call answers the key it
 * stored, or undefined on any failure (logged), and never throws, so a thumbnail can
 * never fail a job.
 */
export interface Thumbnailer {
  /** Thumbnail of an image in memory (the cutout), stored at `key`. */
  fromBuffer(buffer: Buffer, key: string, jobId: string): Promise<string | undefined>;
  /** Thumbnail of an object in S3 (the original), streamed from S3 into sharp. */
  fromStored(sourceKey: string, key: string, jobId: string): Promise<string | undefined>;
  /** An identical image's thumbnail, copied within S3 (a reused result). */
  copy(fromKey: string, key: string, jobId: string): Promise<string | undefined>;
}

export function makeThumbnailer({ storage, size, log }: { storage: Storage; size: number; log: Logger }): Thumbnailer {
  // libvips' operation cache keeps decoded images for reuse; a worker sees each image once.
  sharp.cache(false);
  const options = { limitInputPixels: MAX_INPUT_PIXELS };
  // Without a buffer, sharp is a writable stream to pipe the input into.
  const resizer = (input?: Buffer) =>
    (input ? sharp(input, options) : sharp(options))
      .rotate()
      .resize(size, size, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 80 });

  async function attempt(key: string, jobId: string, store: () => Promise<unknown>): Promise<string | undefined> {
    try {
      await store();
      return key;
    } catch (error) {
      log.warn({ job_id: jobId, key, err: error }, 'thumbnail not made');
      return undefined;
    }
  }

  const put = (key: string, thumbnail: Buffer) => storage.putBuffer(key, thumbnail, 'image/webp');

  return {
    fromBuffer: (buffer, key, jobId) => attempt(key, jobId, async () => put(key, await resizer(buffer).toBuffer())),
    fromStored: (sourceKey, key, jobId) =>
      attempt(key, jobId, async () => {
        const source = await storage.getStream(sourceKey);
        const image = resizer();
        // A failed download destroys `image`, whose toBuffer() then never settles: the pipeline's rejection ends the wait.
        const [, thumbnail] = await Promise.all([pipeline(source, image), image.toBuffer()]);
        await put(key, thumbnail);
      }),
    copy: (fromKey, key, jobId) => attempt(key, jobId, () => storage.copy(fromKey, key)),
  };
}
