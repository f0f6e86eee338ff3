import { stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import type { CutoutClient, Json } from './client.ts';
import type { Progress } from './progress.ts';
import { saveState, type PendingUpload, type RunState } from './state.ts';

const CONTENT_TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
};

/** An upload this close to its expiry is not resumed: its files go into a new one. */
const EXPIRY_MARGIN_MS = 5 * 60_000;

export interface DirectUploadOptions {
  client: CutoutClient;
  progress: Progress;
  parallel: number;
  input: string;
  outDir: string;
}

const idempotencyKeyOf = (uploadId: string) => `cutout-cli-${createHash('sha256').update(uploadId).digest('hex')}`;

/**
 * A folder through direct uploads: per chunk of `chunk` files, `POST /v1/uploads`, each file
 * PUT straight to S3 (`parallel` at a time; the API never sees the bytes), then
 * `POST /v1/batches {"upload_id"}`. The state file names each upload before its files go, so
 * a run killed at any point resumes: it asks the upload which files are in S3 and sends the
 * others, and the batch's Idempotency-Key (from the upload id) gets the same batch back.
 */
export async function submitFolderDirect(
  options: DirectUploadOptions,
  state: RunState,
  pending: string[],
  chunk: number,
  record: (batch: Json, refs: string[]) => void,
): Promise<void> {
  const { client, input, outDir } = options;
  state.uploads ??= [];
  const resumable = state.uploads.filter((upload) => Date.parse(upload.expiresAt) - Date.now() > EXPIRY_MARGIN_MS);
  state.uploads = resumable;
  const inUploads = new Set(resumable.flatMap((upload) => upload.refs));
  const total = pending.length;
  let sent = 0;
  const sentOne = () => options.progress.uploaded(++sent, total);

  for (const upload of [...resumable]) {
    const shown = await client.get(`/v1/uploads/${upload.id}`);
    const files = shown.files as Json[];
    sent += files.filter((file) => file.uploaded).length;
    if (shown.status === 'open')
      await putAll(
        options,
        files.filter((file) => !file.uploaded),
        upload.refs,
        sentOne,
      );
    await makeBatch(options, state, upload, record);
  }
  const fresh = pending.filter((name) => !inUploads.has(name));
  for (let start = 0; start < fresh.length; start += chunk) {
    const refs = fresh.slice(start, start + chunk);
    const declared = await Promise.all(
      refs.map(async (name) => ({
        name,
        content_type: CONTENT_TYPES[extname(name).toLowerCase()]!,
        bytes: (await stat(join(input, name))).size,
      })),
    );
    const created = await client.post('/v1/uploads', { files: declared });
    const upload: PendingUpload = { id: created.id as string, refs, expiresAt: created.expires_at as string };
    state.uploads.push(upload);
    await saveState(outDir, state);
    await putAll(options, created.files as Json[], refs, sentOne);
    await makeBatch(options, state, upload, record);
  }
}

/** PUTs the files (entries of an upload's answer, matched to the folder by name), `parallel` at a time. */
async function putAll(
  { client, input, parallel }: DirectUploadOptions,
  files: Json[],
  refs: string[],
  sentOne: () => void,
): Promise<void> {
  const limit = pLimit(parallel);
  const known = new Set(refs);
  await Promise.all(
    files.map((file) =>
      limit(async () => {
        if (!known.has(file.name) || !file.put_url) return;
        await client.putFile(file.put_url, file.headers, join(input, file.name));
        sentOne();
      }),
    ),
  );
}

async function makeBatch(
  { client, outDir }: DirectUploadOptions,
  state: RunState,
  upload: PendingUpload,
  record: (batch: Json, refs: string[]) => void,
): Promise<void> {
  const batch = await client.post('/v1/batches', { upload_id: upload.id }, idempotencyKeyOf(upload.id));
  record(batch, upload.refs);
  state.uploads = (state.uploads ?? []).filter((pending) => pending.id !== upload.id);
  await saveState(outDir, state);
}
