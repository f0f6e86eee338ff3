import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Multipart, MultipartFile } from '@fastify/multipart';
import type { Readable } from 'node:stream';
import { ImageInputError, storeImage, type ImageSource } from '@cutout/shared/images';
import { newJobId, originalKey } from '@cutout/shared/infra';
import { badRequest } from '../http/errors.ts';
import { clientStream } from '../intake/uploads.ts';
import { skipRestOfBody } from '../intake/json-body.ts';
import { sanitizeFileName, tooManyItems } from './items.ts';
import { manifestFormatOf, readManifest } from './manifest.ts';
import {
  checkSetting,
  fingerprintOf,
  parseSettings,
  rowCollector,
  SETTINGS,
  type BatchIntake,
  type IntakeLimits,
  type ItemSink,
} from './rows.ts';

/** What the parts of a multipart batch gave so far. */
interface PartsRead {
  fields: Record<string, string>;
  hash: ReturnType<typeof createHash>;
  manifest: boolean;
  files: number;
  rows: ReturnType<typeof rowCollector>;
  sink: ItemSink;
  dryRun: boolean;
}

/**
 * Multipart: a `manifest` part (CSV, or JSON lines by its media type or file name), or many
 * `file` parts (each an item named by its file name), plus the settings as fields. The
 * manifest is read row by row as it arrives; files stream to S3 one after another; a file
 * that is not a usable image becomes a rejected row. `stored` collects the keys written so
 * the caller can delete them if the batch is not created.
 */
export async function multipartIntake(
  request: FastifyRequest,
  limits: IntakeLimits,
  sink: ItemSink,
  stored: string[],
): Promise<BatchIntake> {
  const read: PartsRead = {
    fields: {},
    hash: createHash('sha256'),
    manifest: false,
    files: 0,
    rows: rowCollector(sink, limits.maxItems),
    sink,
    dryRun: false,
  };
  // Each kind of part has its own size limit, checked as it streams; the parser's is only a
  // backstop, which cuts a part short (a rejected row or a 413 below) instead of failing the request.
  const fileSize = Math.max(limits.maxBytes, limits.maxManifestBytes) + 1;
  // The plugin reads throwFileSizeLimit per call too, though its types name it for the plugin only.
  const options = {
    limits: { files: limits.maxItems + 1, parts: limits.maxItems + 10, fileSize },
    throwFileSizeLimit: false,
  };
  const parts = request.parts(options);
  try {
    // A malformed or cut-off body is the client's doing (400), as for single uploads.
    for await (const part of clientStream(parts)) await takePart(part, read, limits, stored);
  } catch (error) {
    skipRestOfBody(request);
    throw error;
  }
  const { fields, rows } = read;
  if (!read.manifest && read.files === 0)
    throw badRequest('missing_items', 'Send JSON with "items", a "manifest" part, or "file" parts');
  const { dryRun, ...settings } = parseSettings(fields, limits.fields.form, 'fields');
  return {
    accepted: rows.accepted(),
    rejected: rows.rejected,
    settings,
    dryRun,
    fingerprint: fingerprintOf(read.hash.digest('hex'), fields),
  };
}

async function takePart(part: Multipart, read: PartsRead, limits: IntakeLimits, stored: string[]): Promise<void> {
  if (part.type === 'field') {
    const name = part.fieldname;
    if (!SETTINGS.has(name)) throw badRequest('unknown_field', `Unknown field "${name.slice(0, 100)}"`);
    if (name in read.fields) throw badRequest('duplicate_field', `Field "${name}" was sent twice`);
    // Files stream to S3 as they come: a dry run must be known before the first one.
    if (name === 'dry_run' && read.files > 0)
      throw badRequest('invalid_request', 'Send the dry_run field before the first "file" part');
    read.fields[name] = String(part.value);
    // A setting sent before the files is refused before any of them streams to S3.
    if (checkSetting(name, read.fields[name], limits.fields.form, 'fields')) {
      read.dryRun = true;
      read.sink.markDryRun?.();
    }
    return;
  }
  if (part.fieldname === 'manifest') {
    if (read.manifest || read.files > 0)
      throw badRequest('ambiguous_items', 'Send one "manifest" or "file" parts, not both');
    read.manifest = true;
    const format = manifestFormatOf(part.mimetype, part.filename);
    const sha256 = await readManifest(
      clientStream<Buffer>(part.file),
      format,
      { policy: limits.policy, maxBytes: limits.maxManifestBytes },
      read.rows.take,
    );
    read.hash.update(sha256);
    return;
  }
  if (part.fieldname !== 'file') {
    part.file.resume();
    throw badRequest(
      'unknown_field',
      `Unexpected file field "${part.fieldname}"; send images as "file" or a CSV or JSON-lines list as "manifest"`,
    );
  }
  if (read.manifest) throw badRequest('ambiguous_items', 'Send one "manifest" or "file" parts, not both');
  read.files += 1;
  if (read.files > limits.maxItems) throw tooManyItems(limits.maxItems);
  await takeFile(part, read, limits, stored);
}

async function takeFile(part: MultipartFile, read: PartsRead, limits: IntakeLimits, stored: string[]): Promise<void> {
  const jobId = newJobId();
  const key = originalKey(limits.tenantId, jobId);
  const source = cappedSource(part.file, limits.maxBytes);
  const storage = read.dryRun ? limits.dryRunStorage : limits.storage;
  try {
    if (!read.dryRun) stored.push(key);
    const original = await storeImage(source, {
      storage,
      objectKey: key,
      maxBytes: limits.maxBytes,
      maxPixels: limits.maxPixels,
    });
    read.hash.update(original.sha256);
    await read.rows.take(read.files, {
      kind: 'file',
      jobId,
      original,
      clientRef: sanitizeFileName(part.filename, `file-${read.files}`),
    });
  } catch (error) {
    if (!(error instanceof ImageInputError)) throw error;
    // The rest of a refused file is drained so the next part can be read.
    source.discard();
    await storage.delete(key).catch(() => undefined);
    await read.rows.take(read.files, `${error.code}: ${error.message}`);
  }
}

/**
 * An image file part that stops (and says it was cut) once it passes `maxBytes`. Once
 * read through an iterator, a stream no longer flows on resume(), so what is left of a
 * refused file is drained through the same iterator.
 */
function cappedSource(file: Readable & { truncated: boolean }, maxBytes: number): ImageSource {
  const iterator = clientStream<Buffer>(file);
  let bytes = 0;
  let over = false;
  let draining = false;
  return {
    chunks: {
      async next() {
        if (over || draining) return { value: undefined, done: true };
        const result = await iterator.next();
        if (result.done) return result;
        bytes += result.value.length;
        if (bytes <= maxBytes) return result;
        // Up to the limit, as the multipart parser's own limit would cut it.
        over = true;
        return { value: result.value.subarray(0, result.value.length - (bytes - maxBytes)), done: false };
      },
    },
    truncated: () => over || file.truncated,
    discard() {
      if (draining) return;
      draining = true;
      // Errors of a broken body reach the request's part loop, which answers them.
      void (async () => {
        while (!(await iterator.next()).done);
      })().catch(() => undefined);
    },
  };
}
