import { createHash } from 'node:crypto';
import type { Storage, UrlPolicy } from '@cutout/shared';
import { ApiError } from '../errors.ts';
import { parseJobFields, type FieldRules } from '../job-fields.ts';
import type { BatchSettings } from './create.ts';
import { tooManyItems, type BatchItem, type RejectedRow } from './items.ts';
import type { TakeRow } from './manifest.ts';

/** Where accepted items go as they are read: a batch writer, or nowhere (a retry that only checks its fingerprint). */
export interface ItemSink { add(item: BatchItem): Promise<void> }

/** A batch request once read: rejected rows, the batch-wide settings, and its fingerprint (what Idempotency-Key replays are checked against). */
export interface BatchIntake {
  accepted: number;
  rejected: RejectedRow[];
  settings: BatchSettings;
  fingerprint: string;
}

/** The files of a direct upload as batch rows (apps/api/src/uploads/batch-items.ts). */
export type UploadRows = (uploadId: string, take: TakeRow) => Promise<void>;

export interface IntakeLimits {
  storage: Storage; tenantId: string; policy: UrlPolicy; allowedOptions: readonly string[];
  maxItems: number; maxBytes: number; maxPixels: number;
  /** Largest item list: a CSV or JSON-lines manifest, or a JSON body (MAX_MANIFEST_BYTES); `maxBytes` is each image file's. */
  maxManifestBytes: number;
  uploadRows: UploadRows;
}

export const SETTINGS: ReadonlySet<string> = new Set(['webhook_url', 'options', 'item_events', 'renditions']);
export const rulesOf = (limits: Pick<IntakeLimits, 'policy' | 'allowedOptions'>): FieldRules => ({ urlPolicy: limits.policy, allowedOptions: limits.allowedOptions });

/** Batch-wide fields, as strings (a form sends strings; JSON values are re-encoded). */
export function parseSettings(fields: Record<string, string>, rules: FieldRules): BatchSettings {
  const { webhookUrl, options, renditionPlans } = parseJobFields(
    { webhook_url: fields.webhook_url, options: fields.options, renditions: fields.renditions } as Record<string, string>, rules,
  );
  const events = fields.item_events;
  if (events !== undefined && !['true', 'false'].includes(events)) throw new ApiError('invalid_item_events', 'item_events must be true or false');
  return { webhookUrl, options, renditionPlans, itemEvents: events === 'true' };
}

/** The same request gives the same fingerprint: its items' hashes and its settings. */
export function fingerprintOf(parts: string, fields: Record<string, string>): string {
  return createHash('sha256').update(JSON.stringify([parts, Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1))])).digest('hex');
}

/**
 * Counts rows against `maxItems` (the first row past it is 413, before anything more is
 * read), hands accepted items to the sink, keeps rejected rows with their reason.
 */
export function rowCollector(sink: ItemSink, maxItems: number) {
  const rejected: RejectedRow[] = [];
  let rows = 0;
  let accepted = 0;
  const take: TakeRow = async (row, item) => {
    rows += 1;
    if (rows > maxItems) throw tooManyItems(maxItems);
    if (typeof item === 'string') rejected.push({ row, reason: item });
    else {
      accepted += 1;
      await sink.add(item);
    }
  };
  return { take, rejected, accepted: () => accepted };
}
