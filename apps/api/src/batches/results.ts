import type { Storage } from '@cutout/shared/infra';
import type { BatchStore, JobRecord, JobStore } from '@cutout/shared/stores';
import { renditionViews, type QualityFlag, type RenditionView } from '@cutout/shared/views';
import { csvLine } from '../intake/csv.ts';

/** Item records read per round: the manifest is written as it is read, never held whole. */
const PAGE = 200;

interface ManifestRow {
  client_ref: string | null;
  job_id: string;
  status: string;
  result_url: string | null;
  error_code: string | null;
  error_message: string | null;
  /** `rejected` when a reviewer flagged the cutout as wrong. */
  review: string | null;
  /** The automatic checks' flags of a succeeded item (`[]`: none); null otherwise. */
  quality_flags: QualityFlag[] | null;
  /** The item's renditions by name, as the job shows them; null until it succeeded. */
  renditions: Record<string, RenditionView> | null;
}

type CsvColumn = Exclude<keyof ManifestRow, 'renditions'>;

const MANIFEST_COLUMNS: readonly CsvColumn[] = [
  'client_ref',
  'job_id',
  'status',
  'result_url',
  'error_code',
  'error_message',
  'review',
  'quality_flags',
];

/** The CSV holds one URL column per rendition of the batch, after the fixed ones. */
const renditionColumn = (name: string) => `rendition_${name}_url`;

function csvCells(row: ManifestRow, renditionNames: readonly string[]): string[] {
  const fixed = MANIFEST_COLUMNS.map((column) => {
    const value = row[column];
    return Array.isArray(value) ? value.join(' ') : (value ?? '');
  });
  const urls = renditionNames.map((name) => {
    const rendition = row.renditions?.[name];
    return rendition && 'url' in rendition ? rendition.url : '';
  });
  return [...fixed, ...urls];
}

export interface ManifestDeps {
  batches: BatchStore;
  jobs: JobStore;
  storage: Storage;
  resultUrlTtlMs: number;
}

/** The batch's items in submission order, a page of records at a time. */
async function* batchItems(
  { batches, jobs }: Pick<ManifestDeps, 'batches' | 'jobs'>,
  batchId: string,
  offset = 0,
): AsyncGenerator<{ id: string; record: JobRecord | null }> {
  for (let start = offset; ; start += PAGE) {
    const ids = await batches.itemIds(batchId, start, PAGE);
    const records = await Promise.all(ids.map((id) => jobs.get(id)));
    for (const [i, id] of ids.entries()) yield { id, record: records[i] ?? null };
    if (ids.length < PAGE) return;
  }
}

async function toRow(
  { storage, resultUrlTtlMs }: ManifestDeps,
  id: string,
  record: JobRecord | null,
): Promise<ManifestRow> {
  // A record past its retention is gone; its row still appears, so the manifest lists every item.
  if (!record) {
    return {
      client_ref: null,
      job_id: id,
      status: 'expired',
      result_url: null,
      error_code: null,
      error_message: null,
      review: null,
      quality_flags: null,
      renditions: null,
    };
  }
  const succeeded = record.status === 'succeeded' && record.resultKey !== undefined;
  return {
    client_ref: record.clientRef ?? null,
    job_id: record.id,
    status: record.status,
    result_url: succeeded ? await storage.presign(record.resultKey!, resultUrlTtlMs) : null,
    error_code: record.error?.code ?? null,
    error_message: record.error?.message ?? null,
    review: record.review?.verdict ?? null,
    quality_flags: succeeded ? (record.quality?.flags ?? []) : null,
    renditions: succeeded ? await renditionViews(record, storage, resultUrlTtlMs) : null,
  };
}

/**
 * The manifest as JSON lines or CSV (with a header), one chunk per item. `renditionNames`
 * (the batch's) are the CSV's rendition columns.
 */
export async function* manifestLines(
  deps: ManifestDeps,
  batchId: string,
  format: 'jsonl' | 'csv',
  renditionNames: readonly string[] = [],
): AsyncGenerator<string> {
  if (format === 'csv') yield csvLine([...MANIFEST_COLUMNS, ...renditionNames.map(renditionColumn)]);
  for await (const { id, record } of batchItems(deps, batchId)) {
    const row = await toRow(deps, id, record);
    yield format === 'csv' ? csvLine(csvCells(row, renditionNames)) : `${JSON.stringify(row)}\n`;
  }
}

/** `?format=csv|jsonl` wins over `Accept: text/csv`; JSON lines by default. */
export function manifestFormat(query: string | undefined, accept: string | undefined): 'jsonl' | 'csv' | null {
  if (query !== undefined) return query === 'csv' ? 'csv' : query === 'jsonl' || query === 'json' ? 'jsonl' : null;
  return accept?.includes('text/csv') ? 'csv' : 'jsonl';
}
