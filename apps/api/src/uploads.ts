import type { FastifyRequest } from 'fastify';
import { storeImage, type ImageFetcher, type ImageTarget, type StreamedObject } from '@cutout/shared';
import { ApiError, badRequest } from './errors.ts';

export interface ReceivedUpload {
  fields: Record<string, string>;
  original: StreamedObject;
}

interface UploadTarget extends ImageTarget {
  allowedFields: ReadonlySet<string>;
  images: ImageFetcher;
  /** Throws for a field value that will be refused anyway, before any image is stored. */
  checkField?: (name: string, value: string) => void;
}

/**
 * Streams the single `file` part to S3 (never buffering it whole) and collects the text
 * fields. Whatever goes wrong, no object is left behind.
 */
export async function receiveUpload(request: FastifyRequest, target: UploadTarget): Promise<ReceivedUpload> {
  const { storage, objectKey, maxBytes, maxPixels, allowedFields } = target;
  if (!request.isMultipart()) {
    if (request.headers['content-type']?.startsWith('application/json')) return receiveJson(request, target);
    throw new ApiError('unsupported_media_type', 'Send multipart/form-data with the image in the "file" field, or JSON with an image_url');
  }
  const fields: Record<string, string> = {};
  let original: StreamedObject | undefined;
  let stored = false;
  try {
    for await (const part of clientStream(request.parts())) {
      if (part.type === 'field') {
        if (!allowedFields.has(part.fieldname)) throw badRequest('unknown_field', `Unknown field "${part.fieldname}"`);
        if (part.fieldname in fields) throw badRequest('duplicate_field', `Field "${part.fieldname}" was sent twice`);
        if (part.valueTruncated) throw new ApiError('field_too_large', `Field "${part.fieldname}" is too large`);
        fields[part.fieldname] = String(part.value);
        target.checkField?.(part.fieldname, fields[part.fieldname]!);
        continue;
      }
      if (part.fieldname !== 'file') {
        part.file.resume();
        throw badRequest('unknown_field', `Unexpected file field "${part.fieldname}"; send the image as "file"`);
      }
      stored = true;
      const file = part.file;
      original = await storeImage(
        { chunks: clientStream(file)[Symbol.asyncIterator](), truncated: () => file.truncated, discard: () => void file.resume() },
        { storage, objectKey, maxBytes, maxPixels },
      );
    }
    if (fields.image_url !== undefined) {
      if (original) throw badRequest('ambiguous_image', 'Send either a "file" or an "image_url", not both');
      stored = true;
      original = await fetchImage(fields.image_url, target);
    }
  } catch (error) {
    if (stored) await storage.delete(objectKey).catch((cause: unknown) => request.log.warn({ err: cause, objectKey }, 'orphan original not deleted'));
    throw error;
  }
  if (!original) throw badRequest('missing_file', 'The request has no "file" part with an image, and no image_url');
  delete fields.image_url;
  return { fields, original };
}

/** JSON intake: `{ image_url, webhook_url?, metadata?, options? }`; objects become the same fields a form sends. */
async function receiveJson(request: FastifyRequest, target: UploadTarget): Promise<ReceivedUpload> {
  const body = request.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('invalid_request', 'The JSON body must be an object');
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    if (!target.allowedFields.has(name)) throw badRequest('unknown_field', `Unknown field "${name.slice(0, 100)}"`);
    fields[name] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  if (typeof (body as { image_url?: unknown }).image_url !== 'string') throw badRequest('missing_file', 'The JSON body needs an "image_url" string');
  for (const [name, value] of Object.entries(fields)) target.checkField?.(name, value);
  try {
    const original = await fetchImage(fields.image_url!, target);
    delete fields.image_url;
    return { fields, original };
  } catch (error) {
    await target.storage.delete(target.objectKey).catch(() => undefined);
    throw error;
  }
}

/** Fetches an image_url through the SSRF guard into S3, with the checks an upload gets. */
async function fetchImage(url: string, { images, storage, objectKey, maxBytes, maxPixels }: UploadTarget): Promise<StreamedObject> {
  return storeImage(await images.open(url), { storage, objectKey, maxBytes, maxPixels });
}

const malformed = () => badRequest('invalid_multipart', 'The multipart body is malformed or ended early');

/**
 * The multipart parser fails with plain errors on a malformed or cut-off body: those are
 * the client's doing (400), unlike storage errors, which surface elsewhere as 503.
 * Errors with a fastify code (limits) keep their own mapping.
 */
async function nextFromClient<T>(iterator: AsyncIterator<T>): Promise<IteratorResult<T>> {
  try {
    return await iterator.next();
  } catch (error) {
    if (error instanceof ApiError || (error as { code?: string }).code?.startsWith('FST_')) throw error;
    throw malformed();
  }
}

export async function* clientStream<T>(iterable: AsyncIterable<T>): AsyncGenerator<T> {
  const iterator = iterable[Symbol.asyncIterator]();
  for (;;) {
    const { value, done } = await nextFromClient(iterator);
    if (done) return;
    yield value;
  }
}
