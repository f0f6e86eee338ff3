import type { Storage } from '@cutout/shared/infra';
import { uploadKey, uploadPrefix, type UploadFile, type UploadStore } from '@cutout/shared/stores';

/** Declared files read (and signed) per round. */
const PAGE = 1_000;

/** A declared file and where it stands in S3 (`uploaded`: an object of its declared size is there). */
export interface UploadedFile extends UploadFile {
  index: number;
  key: string;
  storedBytes?: number;
}

/**
 * The declared files of an upload in order, each with the object S3 holds at its key (if
 * any): the file list and a listing of the upload's prefix, merged as both stream by (keys
 * list in index order), a page at a time.
 */
export async function* uploadedFiles(
  { uploads, storage }: { uploads: UploadStore; storage: Storage },
  { id, tenantId, files }: { id: string; tenantId: string; files: number },
): AsyncGenerator<UploadedFile> {
  const objects = storage.list(uploadPrefix(tenantId, id))[Symbol.asyncIterator]();
  let object = await objects.next();
  for (let offset = 0; offset < files; offset += PAGE) {
    for (const [i, file] of (await uploads.files(id, offset, PAGE)).entries()) {
      const key = uploadKey(tenantId, id, offset + i);
      while (!object.done && object.value.key < key) object = await objects.next();
      const stored = !object.done && object.value.key === key ? object.value.bytes : undefined;
      yield { ...file, index: offset + i, key, storedBytes: stored };
    }
  }
}

/** The declared files in order, a page at a time, without looking at S3. */
async function* declaredFiles(
  uploads: UploadStore,
  { id, tenantId, files }: { id: string; tenantId: string; files: number },
): AsyncGenerator<UploadedFile> {
  for (let offset = 0; offset < files; offset += PAGE) {
    for (const [i, file] of (await uploads.files(id, offset, PAGE)).entries())
      yield { ...file, index: offset + i, key: uploadKey(tenantId, id, offset + i) };
  }
}

/**
 * The `files` entries of an upload's answer: name, and for each file `needsUrl` picks a PUT
 * URL with the headers to send. `uploaded` is given when `withState` (GET looks at S3;
 * the answer to POST, made before anything could be uploaded, does not).
 */
export async function* putUrlLines(
  deps: { uploads: UploadStore; storage: Storage },
  upload: { id: string; tenantId: string; files: number },
  ttlMs: number,
  needsUrl: (file: UploadedFile) => boolean,
  { withState = false }: { withState?: boolean } = {},
): AsyncGenerator<Record<string, unknown>> {
  const files = withState ? uploadedFiles(deps, upload) : declaredFiles(deps.uploads, upload);
  let page: UploadedFile[] = [];
  const signed = async function* (batch: UploadedFile[]) {
    const wanted = batch.filter(needsUrl);
    const urls = deps.storage.presignPuts(
      wanted.map(({ key, bytes, contentType }) => ({ key, bytes, contentType })),
      ttlMs,
    );
    let next = wanted.length > 0 ? await urls.next() : undefined;
    for (const file of batch) {
      const entry: Record<string, unknown> = { name: file.name, content_type: file.contentType, bytes: file.bytes };
      if (withState) entry.uploaded = file.storedBytes === file.bytes;
      if (next && !next.done && needsUrl(file)) {
        entry.put_url = next.value.url;
        entry.headers = next.value.headers;
        next = await urls.next();
      }
      yield entry;
    }
  };
  for await (const file of files) {
    page.push(file);
    if (page.length < PAGE) continue;
    yield* signed(page);
    page = [];
  }
  yield* signed(page);
}
