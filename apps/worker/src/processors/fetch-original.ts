import type { Readable } from 'node:stream';
import { ImageInputError, storeImage, type ImageFetcher, type ImageSource } from '@cutout/shared/images';
import { isMissingObject, type Storage, type StreamedObject } from '@cutout/shared/infra';
import type { JobRecord, JobStore } from '@cutout/shared/stores';

/**
 * Batch items given by URL are fetched here, by the worker, not by the API: a 100,000-item
 * batch is accepted in seconds, and the fetches are spread over the workers and retried
 * like any other transient failure. Files a client uploaded straight to S3 are checked here
 * the same way (type by magic bytes, pixel limit, completeness), with the same error codes.
 */
export interface OriginalFetcher {
  /** Fetches `url` through the SSRF guard into `objectKey`, with an upload's checks; leaves nothing behind when it throws. */
  fetch(url: string, objectKey: string): Promise<StreamedObject>;
  /** Checks the client's uploaded object into `objectKey`; the uploaded object goes once its fate is known. */
  fromUpload(uploadKey: string, objectKey: string): Promise<StreamedObject>;
}

/** An S3 object's body as an image source, stopping (and saying so) once it passes `maxBytes`. */
function objectSource(body: Readable, maxBytes: number): ImageSource {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let bytes = 0;
  let over = false;
  const stop = () => void body.destroy();
  return {
    chunks: {
      async next() {
        if (over) return { value: undefined, done: true };
        const result = await iterator.next();
        if (result.done) return result;
        bytes += result.value.length;
        if (bytes <= maxBytes) return result;
        over = true;
        stop();
        return { value: undefined, done: true };
      },
    },
    truncated: () => over,
    discard: stop,
  };
}

export function makeOriginalFetcher({
  images,
  storage,
  maxBytes,
  maxPixels,
}: {
  images: ImageFetcher;
  storage: Storage;
  maxBytes: number;
  maxPixels: number;
}): OriginalFetcher {
  const target = (objectKey: string) => ({ storage, objectKey, maxBytes, maxPixels });
  return {
    async fetch(url, objectKey) {
      try {
        return await storeImage(await images.open(url), target(objectKey));
      } catch (error) {
        await storage.delete(objectKey).catch(() => undefined);
        throw error;
      }
    },
    async fromUpload(uploadKey, objectKey) {
      let body: Readable;
      try {
        body = await storage.getStream(uploadKey);
      } catch (error) {
        if (isMissingObject(error))
          throw new ImageInputError(
            422,
            'upload_missing',
            'The uploaded file is no longer in storage (the upload was deleted or expired)',
          );
        throw error;
      }
      try {
        const stored = await storeImage(objectSource(body, maxBytes), target(objectKey));
        await storage.delete(uploadKey).catch(() => undefined);
        return stored;
      } catch (error) {
        await storage.delete(objectKey).catch(() => undefined);
        // A file that will never be usable is not kept for the sweep; a transient failure keeps it for the retry.
        if (error instanceof ImageInputError && !error.retryable)
          await storage.delete(uploadKey).catch(() => undefined);
        throw error;
      }
    },
  };
}

/** A batch item whose original is not in S3 yet: given by URL, or uploaded by the client and not checked yet. */
export const needsOriginal = (record: JobRecord): boolean =>
  Boolean(record.sourceUrl || record.uploadKey) && !record.originalSha256;

/**
 * Moves the item to `processing`, fetches its original and records it. Returns the
 * updated record; null when the record moved on meanwhile (canceled). A failure goes to
 * `onFailure`, which decides between retry and a final failure (ImageInputError says which).
 */
export async function fetchOriginal(
  { jobs, originals }: { jobs: JobStore; originals: OriginalFetcher },
  record: JobRecord,
  onFailure: (processing: JobRecord, error: unknown) => Promise<never>,
): Promise<JobRecord | null> {
  const processing = await jobs.transition(record.id, ['queued', 'processing'], {
    status: 'processing',
    startedAt: new Date().toISOString(),
    waitingReason: null,
  });
  if (!processing) return null;
  let stored: StreamedObject;
  try {
    stored = processing.uploadKey
      ? await originals.fromUpload(processing.uploadKey, processing.originalKey)
      : await originals.fetch(processing.sourceUrl!, processing.originalKey);
  } catch (error) {
    return onFailure(processing, error);
  }
  return jobs.transition(record.id, ['processing'], {
    originalBytes: stored.bytes,
    originalContentType: stored.contentType,
    originalSha256: stored.sha256,
  });
}
