import { mimeType, quoteStart, sniffImageType } from './body.ts';
import { UpstreamError } from './errors.ts';

/**
 * ByByBG's success format is undocumented, so a 2xx body is read leniently: an image, or
 * JSON that carries the result as base64 (maybe a data: URL) or as a URL to download.
 * Anything else is a permanent error that quotes the body, so an operator can see what
 * upstream actually sent (a downloaded result URL's body excepted, see interpretDownload).
 */

export interface ResultBytes {
  kind: 'bytes';
  body: Buffer;
  contentType: string;
}
export type ResultSource = ResultBytes | { kind: 'url'; url: URL };

// Field names seen in background-removal APIs; checked at the top level, then under `data`.
// Inline bytes come first: they save a second request.
const BASE64_FIELDS = ['result_b64', 'image_base64', 'base64', 'b64', 'image'] as const;
const URL_FIELDS = ['result_url', 'url', 'image_url', 'output_url'] as const;

function badResponse(reason: string, body: Buffer): UpstreamError {
  return new UpstreamError({
    kind: 'permanent',
    code: 'upstream_bad_response',
    message: `${reason}: ${quoteStart(body)}`,
  });
}

/** `data:image/png;base64,...` → bytes, when it is base64 and looks like an image. */
function fromDataUrl(value: string): ResultSource | undefined {
  const match = /^data:([^,]*),(.*)$/s.exec(value.trim());
  if (!match) return undefined;
  const meta = (match[1] ?? '').split(';').map((part) => part.trim().toLowerCase());
  if (!meta.includes('base64')) return undefined;
  return fromBase64(match[2] ?? '', meta[0]);
}

function fromBase64(value: string, declaredType?: string): ResultSource | undefined {
  const compact = value.replace(/\s+/g, '');
  if (compact.length < 8 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) return undefined;
  const body = Buffer.from(compact, 'base64');
  // A declared image type is trusted; otherwise the bytes must look like an image, so a
  // field like `"image": "pending"` is not mistaken for a result.
  const contentType = sniffImageType(body) ?? (declaredType?.startsWith('image/') ? declaredType : undefined);
  return contentType && body.length > 0 ? { kind: 'bytes', body, contentType } : undefined;
}

function fromUrl(value: string): ResultSource | undefined {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return undefined;
  }
  if (url.protocol === 'data:') return fromDataUrl(value);
  // Only http(s): a file: or ftp: URL from upstream must never be fetched.
  return url.protocol === 'http:' || url.protocol === 'https:' ? { kind: 'url', url } : undefined;
}

/** A string field may hold any of the three shapes whatever its name says. */
function fromString(value: string): ResultSource | undefined {
  const trimmed = value.trim();
  if (/^data:/i.test(trimmed)) return fromDataUrl(trimmed);
  if (/^https?:\/\//i.test(trimmed)) return fromUrl(trimmed);
  return fromBase64(trimmed);
}

function containers(json: unknown): Record<string, unknown>[] {
  if (!json || typeof json !== 'object' || Array.isArray(json)) return [];
  const top = json as Record<string, unknown>;
  const data = top.data;
  return data && typeof data === 'object' && !Array.isArray(data) ? [top, data as Record<string, unknown>] : [top];
}

function fromJson(json: unknown): ResultSource | undefined {
  for (const container of containers(json)) {
    for (const field of [...BASE64_FIELDS, ...URL_FIELDS]) {
      const value = container[field];
      if (typeof value !== 'string') continue;
      const source = fromString(value);
      if (source) return source;
    }
  }
  return undefined;
}

export function interpretSuccess(body: Buffer, contentTypeHeader: string | string[] | undefined): ResultSource {
  const mime = mimeType(contentTypeHeader);
  if (mime?.startsWith('image/')) {
    if (body.length === 0) throw badResponse(`ByByBG answered ${mime} with an empty body`, body);
    return { kind: 'bytes', body, contentType: mime };
  }
  // An image sent as application/octet-stream (or with no type) is still an image.
  const sniffed = sniffImageType(body);
  if (sniffed) return { kind: 'bytes', body, contentType: sniffed };

  const looksJson = mime?.includes('json') || body.subarray(0, 64).toString('utf8').trimStart().startsWith('{');
  if (looksJson) {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw badResponse('ByByBG answered with invalid JSON', body);
    }
    const source = fromJson(json);
    if (source) return source;
    throw badResponse('ByByBG answered JSON without a result image or URL', body);
  }
  throw badResponse(`ByByBG answered ${mime ?? 'a body without content type'} instead of an image`, body);
}

/** `type/subtype` as RFC 9110 spells it: anything else is not repeated to a client. */
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]{1,64}\/[a-z0-9!#$&^_.+-]{1,64}$/;

/**
 * A downloaded result must be an image by its content type or its magic bytes. Unlike
 * ByByBG's own answer, the body is not quoted: whoever serves the URL chose it, and the
 * message reaches the tenant. Its size and a well-formed content type say enough.
 */
export function interpretDownload(body: Buffer, contentTypeHeader: string | string[] | undefined): ResultBytes {
  const mime = mimeType(contentTypeHeader);
  const contentType = mime?.startsWith('image/') && body.length > 0 ? mime : sniffImageType(body);
  if (!contentType) {
    const declared =
      mime === undefined
        ? 'a body without content type'
        : MEDIA_TYPE.test(mime)
          ? mime
          : 'a body of an unrecognised content type';
    throw new UpstreamError({
      kind: 'permanent',
      code: 'upstream_bad_response',
      message: `ByByBG's result URL answered ${declared} (${body.length} bytes) instead of an image`,
    });
  }
  return { kind: 'bytes', body, contentType };
}
