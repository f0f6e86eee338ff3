import type { Storage } from '../../../packages/shared/src/infra/storage.ts';
import { uploadPrefix, type UploadStore } from '../../../packages/shared/src/stores/upload-store.ts';

/** Uploads one sweep handles. */
const SWEEP_UPLOADS = 100;

export interface UploadSweepDeps {
  uploads: UploadStore;
  storage: Storage;
  retentionMs: number;
}

/**
 * Deletes what direct uploads left in S3, so nothing is orphaned: at its expiry, an upload no
 * batch took loses every object under its prefix, and its record; one a batch took keeps its
 * objects (each item's worker deletes its own once it has made the item's original) and is
 * swept again a retention period later, for the objects of items that never ran. Returns
 * how many uploads were deleted.
 */
export async function sweepUploads(
  { uploads, storage, retentionMs }: UploadSweepDeps,
  now = Date.now(),
): Promise<number> {
  let deleted = 0;
  for (const id of await uploads.due(now, SWEEP_UPLOADS)) {
    const upload = await uploads.get(id);
    if (upload?.status === 'used' && !upload.leftovers) {
      await uploads.resweepAt(id, Date.parse(upload.expiresAt) + retentionMs);
      continue;
    }
    if (upload) {
      const keys: string[] = [];
      for await (const { key } of storage.list(uploadPrefix(upload.tenantId, id))) keys.push(key);
      await storage.deleteMany(keys);
    }
    await uploads.forget(id);
    deleted += 1;
  }
  return deleted;
}
