import type { Readable } from 'node:stream';
import { UpstreamError } from './errors.ts';

/** Response bodies are read with a cap: a misbehaving upstream must not fill the worker's memory. */
export const MAX_RESULT_BYTES = 100 * 1024 * 1024;
/** Error bodies only feed a short message. */
const MAX_ERROR_BODY_BYTES = 4 * 1024;

/** Reads the whole body or fails with a permanent error once it exceeds `maxBytes`. */
export async function readCapped(
  body: Readable,
  maxBytes: number,
  declaredLength?: string | string[],
): Promise<Buffer> {
  const declared = Number(Array.isArray(declaredLength) ? declaredLength[0] : declaredLength);
  if (Number.isFinite(declared) && declared > maxBytes) {
    body.destroy();
    throw tooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    total += buffer.length;
    if (total > maxBytes) {
      body.destroy();
      throw tooLarge(maxBytes);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(maxBytes: number): UpstreamError {
  return new UpstreamError({
    kind: 'permanent',
    code: 'upstream_bad_response',
    message: `ByByBG's result is larger than ${maxBytes} bytes`,
  });
}

/** Reads at most `maxBytes` and drops the rest: enough for an error message. */
export async function readHead(body: Readable, maxBytes: number = MAX_ERROR_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    chunks.push(buffer);
    total += buffer.length;
    if (total >= maxBytes) break; // leaving the loop destroys the stream: no need to download the rest
  }
  return Buffer.concat(chunks, total).subarray(0, maxBytes);
}

/** Drains a body we do not need, so the connection can be reused (small) or closed (large). */
export async function discard(body: Readable): Promise<void> {
  await readHead(body, MAX_ERROR_BODY_BYTES).catch(() => undefined);
}

/** Image types ByByBG can plausibly return, by their magic bytes. */
export function sniffImageType(bytes: Buffer): string | undefined {
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return 'image/png';
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') {
    return 'image/webp';
  }
  return undefined;
}

/** `image/png; charset=x` → `image/png`; undefined when absent. */
export function mimeType(contentType: string | string[] | undefined): string | undefined {
  const raw = Array.isArray(contentType) ? contentType[0] : contentType;
  const mime = raw?.split(';')[0]?.trim().toLowerCase();
  return mime || undefined;
}

/** The first bytes of a body as printable ASCII, everything else escaped, for error messages. */
export function quoteStart(bytes: Buffer, max = 64): string {
  let out = '';
  for (const byte of bytes.subarray(0, max)) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x5c) out += '\\\\';
    else if (byte === 0x0a) out += '\\n';
    else if (byte === 0x0d) out += '\\r';
    else if (byte === 0x09) out += '\\t';
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `"${out}${bytes.length > max ? '…' : ''}"`;
}

const MESSAGE_MAX_CHARS = 200;

/** A one-line, printable, bounded version of upstream text. */
function shortText(text: string, max = MESSAGE_MAX_CHARS): string {
  const line = text
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function messageFromJson(value: unknown): string | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const { error, message, detail } = value as { error?: unknown; message?: unknown; detail?: unknown };
  if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
    return (error as { message: string }).message;
  }
  if (typeof error === 'string') return error;
  if (typeof message === 'string') return message;
  if (typeof detail === 'string') return detail;
  return undefined;
}

/**
 * Upstream's own explanation of a 4xx: `{error:{message}}`, `{message}` or plain text.
 * HTML error pages are left out: they say nothing useful to a client.
 */
export function upstreamMessage(bytes: Buffer, contentType: string | undefined): string | undefined {
  const text = bytes.toString('utf8');
  if (!text.trim()) return undefined;
  if (contentType?.includes('json') || text.trimStart().startsWith('{')) {
    try {
      const fromJson = messageFromJson(JSON.parse(text));
      if (fromJson) return shortText(fromJson);
    } catch {
      // Truncated or invalid JSON: fall through to the raw text when it is plain text.
    }
  }
  if (contentType === 'text/html' || /^\s*</.test(text)) return undefined;
  return shortText(text);
}
