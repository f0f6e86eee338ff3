import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';

/**
 * A multipart/form-data body built by hand as an async generator, so the original image
 * flows from S3 to ByByBG chunk by chunk. undici's FormData would need the whole file as
 * a Blob in memory, which a catalog of 30 MB photos at high concurrency cannot afford.
 */

export interface MultipartParts {
  boundary: string;
  /** Text fields, sent before the file (see multipartBody). */
  fields: Record<string, string>;
  file: { field: string; filename: string; contentType: string; stream: Readable };
}

/** 24 random bytes: the chance that an image happens to contain it is negligible. */
export function makeBoundary(): string {
  return `----cutout-${randomBytes(24).toString('hex')}`;
}

/** WHATWG multipart rule for names and filenames inside quoted header parameters. */
function escapeQuoted(value: string): string {
  return value.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22');
}

/** WHATWG multipart rule for field values: every line break becomes CRLF. */
function normalizeLineBreaks(value: string): string {
  return value.replace(/\r\n|\r|\n/g, '\r\n');
}

/** Header values must not carry CR/LF, or a crafted content type could add headers. */
function headerSafe(value: string): string {
  return value.replace(/[\r\n]/g, '');
}

function fieldPart(boundary: string, name: string, value: string): Buffer {
  return Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${escapeQuoted(name)}"\r\n\r\n${normalizeLineBreaks(value)}\r\n`,
  );
}

function filePreamble({ boundary, file }: MultipartParts): Buffer {
  return Buffer.from(
    `--${boundary}\r\n` +
      `Content-Disposition: form-data; name="${escapeQuoted(file.field)}"; filename="${escapeQuoted(file.filename)}"\r\n` +
      `Content-Type: ${headerSafe(file.contentType)}\r\n\r\n`,
  );
}

/**
 * Text fields go before the file: streaming parsers (busboy, @fastify/multipart's
 * `request.file()`) only report fields that precede the file, and a server that reads the
 * whole form does not care about the order.
 */
export async function* multipartBody(parts: MultipartParts): AsyncGenerator<Uint8Array> {
  for (const [name, value] of Object.entries(parts.fields)) yield fieldPart(parts.boundary, name, value);
  yield filePreamble(parts);
  for await (const chunk of parts.file.stream) {
    yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
  }
  yield Buffer.from(`\r\n--${parts.boundary}--\r\n`);
}

/** Total body length when the file's size is known, so the upload needs no chunked encoding. */
export function multipartLength(parts: MultipartParts, fileBytes: number): number {
  let total = 0;
  for (const [name, value] of Object.entries(parts.fields)) total += fieldPart(parts.boundary, name, value).length;
  return total + filePreamble(parts).length + fileBytes + Buffer.byteLength(`\r\n--${parts.boundary}--\r\n`);
}
