import type { StreamedObject } from '@cutout/shared/infra';
import { checkUrl, UnsafeUrlError, type UrlPolicy } from '@cutout/shared/security';
import { ApiError } from '../http/errors.ts';

/**
 * One item of a batch, once validated: an image by URL (fetched by the worker), a file sent
 * in the request (already in S3), or a file the client uploaded to S3 itself (checked by the worker).
 */
export type BatchItem =
  | { kind: 'url'; imageUrl: string; clientRef?: string; metadata?: Record<string, unknown> }
  | { kind: 'file'; jobId: string; original: StreamedObject; clientRef: string; metadata?: Record<string, unknown> }
  | { kind: 'upload'; key: string; bytes: number; clientRef: string; metadata?: Record<string, unknown> };

/** A row that was not accepted: its position (1-based; a CSV's header is row 1) and why. */
export interface RejectedRow {
  row: number;
  reason: string;
}

export const tooManyItems = (maxItems: number) =>
  new ApiError('too_many_items', `A batch holds at most ${maxItems} items; split it into several batches`);

const MAX_METADATA_BYTES = 4096;
const MAX_CLIENT_REF = 256;

/** Validates one URL item without touching the network (the worker checks again at connect time). */
export function urlItem(raw: unknown, policy: UrlPolicy): BatchItem | string {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'the item must be an object with an image_url';
  const { image_url: imageUrl, client_ref: clientRef, metadata, ...unknown } = raw as Record<string, unknown>;
  const extra = Object.keys(unknown)[0];
  if (extra !== undefined) return `unknown field "${extra.slice(0, 64)}"`;
  if (typeof imageUrl !== 'string' || imageUrl === '') return 'image_url is missing';
  try {
    checkUrl(imageUrl, policy);
  } catch (error) {
    if (!(error instanceof UnsafeUrlError)) throw error;
    return `invalid_image_url: ${error.message}`;
  }
  if (clientRef !== undefined && (typeof clientRef !== 'string' || clientRef.length > MAX_CLIENT_REF))
    return `client_ref must be a string of at most ${MAX_CLIENT_REF} characters`;
  if (metadata !== undefined) {
    if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) return 'metadata must be a JSON object';
    if (Buffer.byteLength(JSON.stringify(metadata)) > MAX_METADATA_BYTES)
      return `metadata must be at most ${MAX_METADATA_BYTES} bytes`;
  }
  return {
    kind: 'url',
    imageUrl,
    clientRef: clientRef || undefined,
    metadata: metadata as Record<string, unknown> | undefined,
  };
}

/**
 * A CSV manifest's columns from its header: `image_url` is required, `client_ref`
 * optional, every other named column goes into the item's metadata. A string says why
 * the header cannot be used.
 */
export function manifestColumns(header: readonly string[]): string[] | string {
  const columns = header.map((name) => name.trim());
  return columns.includes('image_url') ? columns : 'the manifest header has no image_url column';
}

/** One data row of a manifest as a URL item, or the reason it is rejected. */
export function manifestItem(
  columns: readonly string[],
  values: readonly string[],
  policy: UrlPolicy,
): BatchItem | string {
  if (values.length > columns.length) return `the row has ${values.length} fields; the header names ${columns.length}`;
  const raw: Record<string, unknown> = {};
  const metadata: Record<string, string> = {};
  columns.forEach((name, i) => {
    const value = values[i] ?? '';
    if (name === 'image_url') raw.image_url = value.trim();
    else if (name === 'client_ref') raw.client_ref = value;
    else if (name !== '' && value !== '') metadata[name] = value;
  });
  if (Object.keys(metadata).length > 0) raw.metadata = metadata;
  return urlItem(raw, policy);
}

/** A file name as a client_ref: its base name, printable, at most 256 characters (never a storage key). */
export function sanitizeFileName(name: string | undefined, fallback: string): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const clean = base
    .replace(/[^\p{L}\p{N}._ -]/gu, '_')
    .trim()
    .slice(0, MAX_CLIENT_REF);
  return clean || fallback;
}
