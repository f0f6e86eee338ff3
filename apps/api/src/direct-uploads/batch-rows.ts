import type { Storage } from '@cutout/shared/infra';
import type { UploadStore } from '@cutout/shared/stores';
import { ApiError } from '../http/errors.ts';
import { sanitizeFileName } from '../batches/items.ts';
import type { UploadRows } from '../batches/rows.ts';
import { uploadedFiles } from './put-urls.ts';

const uploadNotFound = () => new ApiError('upload_not_found', 'Upload not found');

/**
 * The rows of a batch made from a direct upload (`POST /v1/batches {"upload_id"}`), one per
 * declared file in order, `client_ref` = its file name: a file whose object is in S3 with the
 * declared size is an item (its bytes are checked by the worker, as a URL item's are); one
 * never uploaded, or of another size, is a rejected row. The batch `batchId` takes the
 * upload first, so one upload makes one batch; without one (a dry run) nothing is taken
 * or deleted.
 */
export function uploadRowsFor(
  { uploads, storage }: { uploads: UploadStore; storage: Storage },
  tenantId: string,
  batchId: string | null,
): UploadRows {
  return async (uploadId, take) => {
    if (!/^upl_[0-9A-Za-z]{1,64}$/.test(uploadId)) throw uploadNotFound();
    const claim =
      batchId === null ? await uploads.peek(uploadId, tenantId) : await uploads.claim(uploadId, tenantId, batchId);
    if (claim === 'missing') throw uploadNotFound();
    if (claim === 'expired')
      throw new ApiError('upload_expired', 'The upload has expired (UPLOAD_URL_TTL); upload the files again');
    if (claim === 'used') throw new ApiError('upload_already_used', 'A batch was already made from this upload');
    const upload = await uploads.get(uploadId);
    if (!upload) throw uploadNotFound();
    // Nothing will ever read an object of another size than declared: it goes at once.
    const misfits: string[] = [];
    try {
      for await (const file of uploadedFiles({ uploads, storage }, upload)) {
        const row = file.index + 1;
        if (file.storedBytes === undefined)
          await take(row, `upload_missing: ${file.name.slice(0, 256)} was not uploaded`);
        else if (file.storedBytes !== file.bytes) {
          misfits.push(file.key);
          await take(
            row,
            `upload_size_mismatch: ${file.name.slice(0, 256)} is ${file.storedBytes} bytes; ${file.bytes} were declared`,
          );
        } else
          await take(row, {
            kind: 'upload',
            key: file.key,
            bytes: file.bytes,
            clientRef: sanitizeFileName(file.name, `file-${row}`),
          });
      }
      if (batchId !== null) await storage.deleteMany(misfits).catch(() => undefined);
    } catch (error) {
      if (batchId !== null) await uploads.unclaim(uploadId, batchId).catch(() => undefined);
      throw error;
    }
  };
}
