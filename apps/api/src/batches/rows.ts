import { createHash } from 'node:crypto';
import type { Storage } from '@cutout/shared/infra';
import type { RenditionPlan } from '@cutout/shared/renditions';
import type { UrlPolicy } from '@cutout/shared/security';
import { z } from 'zod';
import type { FieldSchemas } from '../contract/fields.ts';
import { parseOrThrow, type ValidationPart } from '../contract/validation.ts';
import type { BatchSettings } from './create.ts';
import { tooManyItems, type BatchItem, type RejectedRow } from './items.ts';
import type { TakeRow } from './manifest.ts';

/**
 * Where accepted items go as they are read: a batch writer, a sink that only counts (a
 * retry that checks its fingerprint), or a dry run's tally (batch-sink.ts).
 */
export interface ItemSink {
  /** A promise only when the caller must wait for it (see TakeRow). */
  add(item: BatchItem): Promise<void> | undefined;
  /** The request says `dry_run`: nothing more is written, what was is dropped. */
  markDryRun?(): void;
}

/** A batch request once read: rejected rows, the batch-wide settings, and its fingerprint (what Idempotency-Key replays are checked against). */
export interface BatchIntake {
  accepted: number;
  rejected: RejectedRow[];
  settings: BatchSettings;
  /** `dry_run`: estimate the batch (estimate.ts) instead of creating it. */
  dryRun: boolean;
  fingerprint: string;
}

/** The files of a direct upload as batch rows (direct-uploads/batch-rows.ts). */
export type UploadRows = (uploadId: string, take: TakeRow) => Promise<void>;

export interface IntakeLimits {
  storage: Storage;
  tenantId: string;
  policy: UrlPolicy;
  /** How each batch-wide setting is validated, as JSON and as form text. */
  fields: FieldSchemas;
  /** Where a dry run's files go: checked and hashed as they stream, stored nowhere. */
  dryRunStorage: Storage;
  maxItems: number;
  maxBytes: number;
  maxPixels: number;
  /** Largest item list: a CSV or JSON-lines manifest, or a JSON body (MAX_MANIFEST_BYTES); `maxBytes` is each image file's. */
  maxManifestBytes: number;
  uploadRows: UploadRows;
}

const SETTING_NAMES = ['webhook_url', 'options', 'item_events', 'renditions', 'dry_run'] as const;
export const SETTINGS: ReadonlySet<string> = new Set(SETTING_NAMES);

/** The field schemas of a job (FieldSchemas `json` or `form`); only the batch-wide ones are read. */
type SettingSchemas = Record<(typeof SETTING_NAMES)[number], z.ZodType>;

/** What the settings' schemas give, as JSON or as text alike. */
interface SettingValues {
  webhook_url?: string;
  options?: Record<string, string>;
  renditions?: RenditionPlan[];
  item_events?: boolean;
  dry_run?: boolean;
}

const schemaCache = new WeakMap<SettingSchemas, z.ZodType>();
const settingsSchema = (schemas: SettingSchemas): z.ZodType => {
  let schema = schemaCache.get(schemas);
  if (!schema) {
    schema = z.object(Object.fromEntries(SETTING_NAMES.map((name) => [name, schemas[name].optional()]))).strict();
    schemaCache.set(schemas, schema);
  }
  return schema;
};

/**
 * The batch-wide settings, validated by the fields' one definition: as JSON values (a JSON
 * body), or as text (a form's fields, a query string).
 */
export function parseSettings(
  fields: Record<string, unknown>,
  schemas: SettingSchemas,
  part: ValidationPart,
): BatchSettings & { dryRun: boolean } {
  const settings = parseOrThrow(settingsSchema(schemas), fields, part) as SettingValues;
  return {
    webhookUrl: settings.webhook_url,
    options: settings.options,
    renditionPlans: settings.renditions,
    itemEvents: settings.item_events ?? false,
    dryRun: settings.dry_run ?? false,
  };
}

/**
 * One setting as soon as it is read, so a bad one is refused before the items after it;
 * true when it makes the request a dry run.
 */
export function checkSetting(name: string, value: unknown, schemas: SettingSchemas, part: ValidationPart): boolean {
  return SETTINGS.has(name) && parseSettings({ [name]: value }, schemas, part).dryRun;
}

/** The same request gives the same fingerprint: its items' hashes and its settings. */
export function fingerprintOf(parts: string, fields: Record<string, unknown>): string {
  return createHash('sha256')
    .update(JSON.stringify([parts, Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1))]))
    .digest('hex');
}

/**
 * Counts rows against `maxItems` (the first row past it is 413, before anything more is
 * read), hands accepted items to the sink, keeps rejected rows with their reason.
 */
export function rowCollector(sink: ItemSink, maxItems: number) {
  const rejected: RejectedRow[] = [];
  let rows = 0;
  let accepted = 0;
  const take: TakeRow = (row, item) => {
    rows += 1;
    if (rows > maxItems) return Promise.reject(tooManyItems(maxItems));
    if (typeof item === 'string') {
      rejected.push({ row, reason: item });
      return undefined;
    }
    accepted += 1;
    return sink.add(item);
  };
  return { take, rejected, accepted: () => accepted };
}
