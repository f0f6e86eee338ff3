import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ACCEPTED_TYPES } from '@cutout/shared/images';
import { newUploadId, type UploadFile } from '@cutout/shared/stores';
import type { AppDeps } from '../deps.ts';
import { tenantOf } from '../auth/authenticate.ts';
import { ApiError, badRequest } from '../http/errors.ts';
import { bodyChunks, readJsonBody, skipRestOfBody } from '../intake/json-body.ts';
import { putUrlLines } from './put-urls.ts';

export type UploadDeps = Pick<AppDeps, 'uploads' | 'storage' | 'config'>;

/** Declared files kept before they are written to Redis together. */
const CHUNK = 1_000;
const MAX_NAME_LENGTH = 1_024;
const FILE_FIELDS = new Set(['name', 'content_type', 'bytes']);

/** One declared file, checked: a usable name, a type Cutout takes, a size within MAX_UPLOAD_BYTES. */
function uploadFile(raw: unknown, index: number, maxBytes: number): UploadFile {
  const at = `files[${index}]`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw badRequest('invalid_request', `${at} must be an object with name, content_type and bytes`);
  const extra = Object.keys(raw).find((name) => !FILE_FIELDS.has(name));
  if (extra !== undefined) throw badRequest('invalid_request', `${at} has an unknown field "${extra.slice(0, 64)}"`);
  const { name, content_type: contentType, bytes } = raw as Record<string, unknown>;
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME_LENGTH)
    throw badRequest('invalid_request', `${at}.name must be a file name of 1 to ${MAX_NAME_LENGTH} characters`);
  if (typeof contentType !== 'string' || !ACCEPTED_TYPES.has(contentType)) {
    throw new ApiError('unsupported_media_type', `${at}.content_type must be image/jpeg, image/png or image/webp`);
  }
  if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < 0)
    throw badRequest('invalid_request', `${at}.bytes must be the file's size in bytes`);
  if (bytes === 0) throw badRequest('empty_file', `${at} is empty`);
  if (bytes > maxBytes) throw new ApiError('file_too_large', `${at} is ${bytes} bytes; the limit is ${maxBytes} bytes`);
  return { name, contentType, bytes };
}

/**
 * `POST /v1/uploads {"files": [{name, content_type, bytes}, …]}`: records the declared files
 * (read as the body streams in, written to Redis in chunks) and answers 201 with a PUT URL
 * per file, streamed as they are signed. Each URL is bound to a key Cutout chose, the size
 * and the type; it expires with the upload (UPLOAD_URL_TTL).
 */
export async function createUpload(
  { uploads, storage, config }: UploadDeps,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const tenantId = tenantOf(request);
  const id = newUploadId();
  const createdAt = new Date().toISOString();
  const expiresAt = new Date(Date.now() + config.uploads.urlTtlMs).toISOString();
  const maxFiles = config.api.maxBatchItems;
  let pending: UploadFile[] = [];
  let count = 0;
  try {
    const body = await readJsonBody(
      bodyChunks(request),
      { array: 'files', fields: new Set(), maxBytes: config.api.maxManifestBytes },
      async (raw, index) => {
        if (index >= maxFiles)
          throw new ApiError(
            'too_many_items',
            `An upload holds at most ${maxFiles} files (MAX_BATCH_ITEMS); split it into several`,
          );
        pending.push(uploadFile(raw, index, config.api.maxUploadBytes));
        count = index + 1;
        if (pending.length >= CHUNK) {
          await uploads.addFiles(id, pending, expiresAt);
          pending = [];
        }
      },
    );
    if (!body.hasArray || count === 0)
      throw badRequest(
        'invalid_request',
        'Send {"files": [{"name", "content_type", "bytes"}, …]} with at least one file',
      );
    await uploads.addFiles(id, pending, expiresAt);
    await uploads.open({ id, tenantId, createdAt, expiresAt, files: count });
  } catch (error) {
    skipRestOfBody(request);
    await uploads.forget(id).catch(() => undefined);
    throw error;
  }
  request.log.info({ upload_id: id, files: count }, 'upload created');
  const head = `{"object":"upload","id":"${id}","status":"open","batch_id":null,"created_at":"${createdAt}","expires_at":"${expiresAt}","files":[`;
  const lines = putUrlLines({ uploads, storage }, { id, tenantId, files: count }, config.uploads.urlTtlMs, () => true);
  return reply
    .status(201)
    .header('location', `${config.api.publicBaseUrl}/v1/uploads/${id}`)
    .type('application/json; charset=utf-8')
    .send(Readable.from(jsonArray(head, lines, ']}')));
}

/** `head`, the elements comma-separated, `tail`: a JSON document written as its elements come. */
export async function* jsonArray(head: string, elements: AsyncIterable<unknown>, tail: string): AsyncGenerator<string> {
  yield head;
  let first = true;
  for await (const element of elements) {
    yield `${first ? '' : ','}${JSON.stringify(element)}`;
    first = false;
  }
  yield tail;
}
