import { storeImage, type ImageFetcher, type JobRecord, type JobStore, type Storage, type StreamedObject } from '@cutout/shared';

/**
 * Batch items given by URL are fetched here, by the worker, not by the API: a 10,000-item
 * batch is accepted in seconds, and the fetches are spread over the workers and retried
 * like any other transient failure.
 */
export interface OriginalFetcher {
  /** Fetches `url` through the SSRF guard into `objectKey`, with an upload's checks; leaves nothing behind when it throws. */
  fetch(url: string, objectKey: string): Promise<StreamedObject>;
}

export function makeOriginalFetcher({ images, storage, maxBytes, maxPixels }: { images: ImageFetcher; storage: Storage; maxBytes: number; maxPixels: number }): OriginalFetcher {
  return {
    async fetch(url, objectKey) {
      try {
        return await storeImage(await images.open(url), { storage, objectKey, maxBytes, maxPixels });
      } catch (error) {
        await storage.delete(objectKey).catch(() => undefined);
        throw error;
      }
    },
  };
}

/** A URL item whose original is not in S3 yet. */
export const needsOriginal = (record: JobRecord): boolean => Boolean(record.sourceUrl) && !record.originalSha256;

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
  const processing = await jobs.transition(record.id, ['queued', 'processing'], { status: 'processing', startedAt: new Date().toISOString(), waitingReason: '' });
  if (!processing) return null;
  let stored: StreamedObject;
  try {
    stored = await originals.fetch(processing.sourceUrl!, processing.originalKey);
  } catch (error) {
    return onFailure(processing, error);
  }
  return jobs.transition(record.id, ['processing'], { originalBytes: stored.bytes, originalContentType: stored.contentType, originalSha256: stored.sha256 });
}
