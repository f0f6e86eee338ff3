import { createHash } from 'node:crypto';
import type { UrlPolicy } from '@cutout/shared/security';
import { CsvError, csvRows } from '../intake/csv.ts';
import { ApiError } from '../http/errors.ts';
import { manifestColumns, manifestItem, urlItem, type BatchItem } from './items.ts';

/**
 * A manifest row longer than this cannot be a valid item (a URL of at most 2,048
 * characters, a client_ref of 256, 4 KB of metadata), so the manifest is refused there
 * rather than the parser holding it.
 */
export const MAX_MANIFEST_ROW_BYTES = 64 * 1024;

export interface ManifestLimits {
  policy: UrlPolicy;
  maxBytes: number;
}

/**
 * Takes one row as it is read: an item, or why the row is rejected. Rows are 1-based.
 * Returns a promise only when the reader must wait (a chunk being written): a row taken at
 * once allocates no promise, which at 100,000 rows is a good part of what reading costs.
 */
export type TakeRow = (row: number, item: BatchItem | string) => Promise<void> | undefined;

export type ManifestFormat = 'csv' | 'ndjson';

const invalid = (message: string) => new ApiError('invalid_manifest', message);

/** JSON lines by media type (`application/x-ndjson`, `application/jsonl`) or by file name; CSV otherwise. */
export function manifestFormatOf(mimeType: string | undefined, fileName?: string): ManifestFormat {
  const type = (mimeType ?? '').split(';')[0]!.trim().toLowerCase();
  if (['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines'].includes(type))
    return 'ndjson';
  return /\.(jsonl|ndjson)$/i.test(fileName ?? '') ? 'ndjson' : 'csv';
}

/** The bytes of a manifest, stopping with 413 at the first byte past `maxBytes`, hashed as they pass. */
async function* counted(
  chunks: AsyncIterable<Buffer>,
  maxBytes: number,
  hash: ReturnType<typeof createHash>,
): AsyncGenerator<Buffer> {
  let bytes = 0;
  for await (const chunk of chunks) {
    bytes += chunk.length;
    if (bytes > maxBytes)
      throw new ApiError('file_too_large', `The manifest is larger than the limit of ${maxBytes} bytes`);
    hash.update(chunk);
    yield chunk;
  }
}

/**
 * Reads a manifest as it streams in, row by row, handing each row to `take` before the next
 * is read (so a full sink holds the stream back). Keeps neither the text nor the items.
 * Returns the SHA-256 of the bytes.
 */
export async function readManifest(
  chunks: AsyncIterable<Buffer>,
  format: ManifestFormat,
  limits: ManifestLimits,
  take: TakeRow,
): Promise<string> {
  const hash = createHash('sha256');
  const bytes = counted(chunks, limits.maxBytes, hash);
  if (format === 'ndjson') await readJsonLines(bytes, limits.policy, take);
  else await readCsv(bytes, limits.policy, take);
  return hash.digest('hex');
}

/** CSV with a header row (row 1); `image_url` required, `client_ref` optional, other columns become metadata. */
async function readCsv(bytes: AsyncIterable<Buffer>, policy: UrlPolicy, take: TakeRow): Promise<void> {
  let columns: string[] | undefined;
  let row = 0;
  try {
    for await (const values of csvRows(bytes, { maxRowBytes: MAX_MANIFEST_ROW_BYTES })) {
      row += 1;
      if (!columns) {
        const header = manifestColumns(values);
        if (typeof header === 'string') throw invalid(header);
        columns = header;
        continue;
      }
      const taking = take(row, manifestItem(columns, values, policy));
      if (taking) await taking;
    }
  } catch (error) {
    if (error instanceof CsvError) throw invalid(`The manifest is not valid CSV: ${error.message}`);
    throw error;
  }
  if (!columns) throw invalid('the manifest is empty');
}

/**
 * JSON lines: one item object per line (`{"image_url": …, "client_ref"?, "metadata"?}`), LF or
 * CRLF, blank lines skipped; rows count the other lines from 1. A line that is not JSON is a
 * rejected row, like an item that is not valid.
 */
async function readJsonLines(bytes: AsyncIterable<Buffer>, policy: UrlPolicy, take: TakeRow): Promise<void> {
  let row = 0;
  for await (const line of lines(bytes, MAX_MANIFEST_ROW_BYTES)) {
    const text = (row === 0 ? line.replace(/^\ufeff/, '') : line).trim();
    if (text === '') continue;
    row += 1;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      await take(row, 'the line is not valid JSON');
      continue;
    }
    const taking = take(row, urlItem(raw, policy));
    if (taking) await taking;
  }
  if (row === 0) throw invalid('the manifest is empty');
}

/**
 * The lines of a byte stream as UTF-8 text, one at a time, refusing a line over `maxBytes`
 * (node:readline has no such bound: it would hold a line of any length).
 */
async function* lines(bytes: AsyncIterable<Buffer>, maxBytes: number): AsyncGenerator<string> {
  let carry: Buffer[] = [];
  let carried = 0;
  let line = 0;
  const tooLong = () => invalid(`The manifest has a line longer than ${maxBytes} bytes (line ${line + 1})`);
  for await (const chunk of bytes) {
    let start = 0;
    for (let end = chunk.indexOf(0x0a, start); end !== -1; end = chunk.indexOf(0x0a, start)) {
      if (carried + end - start > maxBytes) throw tooLong();
      const piece = chunk.subarray(start, end);
      yield (carried > 0 ? Buffer.concat([...carry, piece]) : piece).toString('utf8');
      line += 1;
      carry = [];
      carried = 0;
      start = end + 1;
    }
    if (start < chunk.length) {
      carried += chunk.length - start;
      if (carried > maxBytes) throw tooLong();
      carry.push(chunk.subarray(start));
    }
  }
  if (carried > 0) yield Buffer.concat(carry).toString('utf8');
}
