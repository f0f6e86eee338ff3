import type { FastifyRequest } from 'fastify';
import { storeImage, type ImageFetcher, type ImageTarget } from '@cutout/shared/images';
import type { StreamedObject } from '@cutout/shared/infra';
import { z } from 'zod';
import { ApiError, badRequest } from '../http/errors.ts';
import { parseOrThrow } from '../contract/validation.ts';

export interface ReceivedUpload<F> {
  /** The fields, validated (JSON values, not their text). */
  fields: F;
  original: StreamedObject;
}

interface UploadTarget extends ImageTarget {
  images: ImageFetcher;
}

/**
 * Streams the single `file` part to S3 (never buffering it whole) and validates each text
 * field with `fields` (the form's schemas) as it arrives: a bad field sent before the file
 * costs no upload. Whatever goes wrong, no object is left behind.
 */
export async function receiveMultipartUpload<S extends z.ZodObject>(
  request: FastifyRequest,
  target: UploadTarget & { fields: S },
): Promise<ReceivedUpload<Omit<z.output<S>, 'image_url' | 'file'>>> {
  const { storage, objectKey, maxBytes, maxPixels } = target;
  const shape = target.fields.shape as Record<string, z.ZodType>;
  const fields: Record<string, unknown> = {};
  let imageUrl: string | undefined;
  let original: StreamedObject | undefined;
  let stored = false;
  try {
    for await (const part of clientStream(request.parts())) {
      if (part.type === 'field') {
        const name = part.fieldname;
        if (!Object.hasOwn(shape, name) || name === 'file')
          throw badRequest('unknown_field', `Unknown field "${name.slice(0, 100)}"`);
        if (name in fields || (name === 'image_url' && imageUrl !== undefined))
          throw badRequest('duplicate_field', `Field "${name}" was sent twice`);
        if (part.valueTruncated) throw new ApiError('field_too_large', `Field "${name}" is too large`);
        const value = String(part.value);
        if (name === 'image_url') imageUrl = value;
        else fields[name] = parseOrThrow(z.object({ [name]: shape[name]! }), { [name]: value }, 'fields')[name];
        continue;
      }
      if (part.fieldname !== 'file') {
        part.file.resume();
        throw badRequest('unknown_field', `Unexpected file field "${part.fieldname}"; send the image as "file"`);
      }
      stored = true;
      const file = part.file;
      original = await storeImage(
        {
          chunks: clientStream(file)[Symbol.asyncIterator](),
          truncated: () => file.truncated,
          discard: () => void file.resume(),
        },
        { storage, objectKey, maxBytes, maxPixels },
      );
    }
    if (imageUrl !== undefined) {
      if (original) throw badRequest('ambiguous_image', 'Send either a "file" or an "image_url", not both');
      stored = true;
      original = await fetchImage(imageUrl, target);
    }
  } catch (error) {
    if (stored)
      await storage
        .delete(objectKey)
        .catch((cause: unknown) => request.log.warn({ err: cause, objectKey }, 'orphan original not deleted'));
    throw error;
  }
  if (!original) throw badRequest('missing_file', 'The request has no "file" part with an image, and no image_url');
  return { fields: fields as Omit<z.output<S>, 'image_url' | 'file'>, original };
}

/** JSON intake: the body (already validated) names an `image_url`, fetched through the SSRF guard into S3. */
export async function receiveUrlUpload<F extends { image_url: string }>(
  body: F,
  target: UploadTarget,
): Promise<ReceivedUpload<Omit<F, 'image_url'>>> {
  const { image_url: imageUrl, ...fields } = body;
  try {
    return { fields, original: await fetchImage(imageUrl, target) };
  } catch (error) {
    await target.storage.delete(target.objectKey).catch(() => undefined);
    throw error;
  }
}

/** Fetches an image_url through the SSRF guard into S3, with the checks an upload gets. */
async function fetchImage(
  url: string,
  { images, storage, objectKey, maxBytes, maxPixels }: UploadTarget,
): Promise<StreamedObject> {
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
