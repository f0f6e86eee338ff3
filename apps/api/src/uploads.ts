import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import type { MultipartFile } from '@fastify/multipart';
import { fileTypeFromBuffer } from 'file-type';
import type { Storage, StreamedObject } from '@cutout/shared';
import { ApiError, badRequest } from './errors.ts';

/** Image types ByByBG accepts, identified by magic bytes, never by the client's Content-Type. */
export const ACCEPTED_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp']);
/** Enough bytes for file-type to recognise any format it knows. */
const SNIFF_BYTES = 4100;

export interface ReceivedUpload {
  fields: Record<string, string>;
  original: StreamedObject;
}

interface UploadTarget { storage: Storage; objectKey: string; maxBytes: number; allowedFields: ReadonlySet<string> }

/**
 * Streams the single `file` part to S3 (never buffering it whole) and collects the text
 * fields. Whatever goes wrong, no object is left behind.
 */
export async function receiveUpload(request: FastifyRequest, { storage, objectKey, maxBytes, allowedFields }: UploadTarget): Promise<ReceivedUpload> {
  if (!request.isMultipart()) {
    throw new ApiError(415, 'unsupported_media_type', 'Send multipart/form-data with the image in the "file" field');
  }
  const fields: Record<string, string> = {};
  let original: StreamedObject | undefined;
  let stored = false;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        if (!allowedFields.has(part.fieldname)) throw badRequest('unknown_field', `Unknown field "${part.fieldname}"`);
        if (part.fieldname in fields) throw badRequest('duplicate_field', `Field "${part.fieldname}" was sent twice`);
        if (part.valueTruncated) throw new ApiError(413, 'field_too_large', `Field "${part.fieldname}" is too large`);
        fields[part.fieldname] = String(part.value);
        continue;
      }
      if (part.fieldname !== 'file') {
        part.file.resume();
        throw badRequest('unknown_field', `Unexpected file field "${part.fieldname}"; send the image as "file"`);
      }
      stored = true;
      original = await storeImage(part, { storage, objectKey, maxBytes });
    }
  } catch (error) {
    if (stored) await storage.delete(objectKey).catch((cause: unknown) => request.log.warn({ err: cause, objectKey }, 'orphan original not deleted'));
    throw error;
  }
  if (!original) throw badRequest('missing_file', 'The request has no "file" part with an image');
  return { fields, original };
}

async function storeImage(part: MultipartFile, { storage, objectKey, maxBytes }: Omit<UploadTarget, 'allowedFields'>): Promise<StreamedObject> {
  const iterator = part.file[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head = await readHead(iterator);
  if (head.length === 0) throw badRequest('empty_file', 'The uploaded file is empty');
  const detected = await fileTypeFromBuffer(head);
  if (!detected || !ACCEPTED_TYPES.has(detected.mime)) {
    part.file.resume();
    throw new ApiError(415, 'unsupported_media_type', 'The file is not a JPEG, PNG or WebP image');
  }
  const stored = await storage.putStream(objectKey, Readable.from(replay(head, iterator)), detected.mime);
  if (part.file.truncated) {
    throw new ApiError(413, 'file_too_large', `The file is larger than the limit of ${maxBytes} bytes`);
  }
  return stored;
}

async function readHead(iterator: AsyncIterator<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < SNIFF_BYTES) {
    const { value, done } = await iterator.next();
    if (done) break;
    chunks.push(value);
    length += value.length;
  }
  return Buffer.concat(chunks);
}

async function* replay(head: Buffer, iterator: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield head;
  for (;;) {
    const { value, done } = await iterator.next();
    if (done) return;
    yield value;
  }
}
