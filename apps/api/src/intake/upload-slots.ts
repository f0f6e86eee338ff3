import pLimit from 'p-limit';
import type { Storage } from '@cutout/shared/infra';

/**
 * Streaming an upload to S3 holds about one multipart part (5 MiB, and a copy while it is
 * assembled) per upload. At most `slots` uploads stream at once per API process; the others
 * wait for a slot with their bytes held back by TCP, so memory stays bounded however many
 * clients upload together. Everything else the storage does passes straight through.
 */
export function withUploadSlots(storage: Storage, slots: number): Storage {
  const limit = pLimit(slots);
  return {
    ...storage,
    putStream: (key, body, contentType, signal) => limit(() => storage.putStream(key, body, contentType, signal)),
  };
}
