import { createHash } from 'node:crypto';
import { CsvError, csvRows, type UrlPolicy } from '@cutout/shared';
import { ApiError } from '../errors.ts';
import { manifestColumns, manifestItem, tooManyItems, type BatchItem, type RejectedRow } from './items.ts';

/**
 * A manifest row longer than this cannot be a valid item (a URL of at most 2,048
 * characters, a client_ref of 256, 4 KB of metadata), so the manifest is refused there
 * rather than the parser holding it.
 */
export const MAX_MANIFEST_ROW_BYTES = 64 * 1024;

export interface ManifestLimits { policy: UrlPolicy; maxItems: number; maxBytes: number }

export interface ManifestIntake { items: BatchItem[]; rejected: RejectedRow[]; sha256: string }

const invalid = (message: string) => new ApiError('invalid_manifest', message);

/**
 * Reads a CSV manifest as it streams in, row by row: it stops with 413 at the first data row
 * past `maxItems` or the first byte past `maxBytes`, without reading the rest, and keeps
 * only the items and rejected rows, never the text. Rows are numbered with the header as 1.
 */
export async function readManifest(chunks: AsyncIterable<Buffer>, { policy, maxItems, maxBytes }: ManifestLimits): Promise<ManifestIntake> {
  const hash = createHash('sha256');
  async function* counted(): AsyncGenerator<Buffer> {
    let bytes = 0;
    for await (const chunk of chunks) {
      bytes += chunk.length;
      if (bytes > maxBytes) throw new ApiError('file_too_large', `The manifest is larger than the limit of ${maxBytes} bytes`);
      hash.update(chunk);
      yield chunk;
    }
  }
  const items: BatchItem[] = [];
  const rejected: RejectedRow[] = [];
  let columns: string[] | undefined;
  let row = 0;
  try {
    for await (const values of csvRows(counted(), { maxRowBytes: MAX_MANIFEST_ROW_BYTES })) {
      row += 1;
      if (!columns) {
        const header = manifestColumns(values);
        if (typeof header === 'string') throw invalid(header);
        columns = header;
        continue;
      }
      if (row - 1 > maxItems) throw tooManyItems(maxItems);
      const item = manifestItem(columns, values, policy);
      if (typeof item === 'string') rejected.push({ row, reason: item });
      else items.push(item);
    }
  } catch (error) {
    if (error instanceof CsvError) throw invalid(`The manifest is not valid CSV: ${error.message}`);
    throw error;
  }
  if (!columns) throw invalid('the manifest is empty');
  return { items, rejected, sha256: hash.digest('hex') };
}
