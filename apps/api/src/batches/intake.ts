import type { FastifyRequest } from 'fastify';
import {
  CsvError, ImageInputError, newJobId, originalKey, parseCsv, sha256Hex, storeImage,
  type Storage, type UrlPolicy,
} from '@cutout/shared';
import { ApiError, badRequest } from '../errors.ts';
import { parseJobFields } from '../job-fields.ts';
import { clientStream } from '../uploads.ts';
import { csvItems, sanitizeFileName, urlItem, type BatchItem, type RejectedRow } from './items.ts';

/** A batch request, validated: accepted items in order, rejected rows, and the batch-wide settings. */
export interface BatchIntake {
  items: BatchItem[];
  rejected: RejectedRow[];
  webhookUrl?: string;
  options?: Record<string, string>;
  itemEvents: boolean;
  /** `dry_run`: estimate the batch (estimate.ts) instead of creating it. */
  dryRun?: boolean;
  /** Same request, same fingerprint: what Idempotency-Key replays are checked against. */
  fingerprint: string;
}

export interface IntakeLimits {
  storage: Storage; tenantId: string; policy: UrlPolicy; maxItems: number; maxBytes: number; maxPixels: number;
  /** Where a dry run's files go: checked and hashed as they stream, stored nowhere. */
  dryRunStorage: Storage;
}

const SETTINGS = new Set(['webhook_url', 'options', 'item_events', 'dry_run']);
const BOOLEAN = ['true', 'false'];

const tooMany = (maxItems: number) => new ApiError(413, 'too_many_items', `A batch holds at most ${maxItems} items; split it into several batches`);

/** Batch-wide fields, as strings (a form sends strings; JSON values are re-encoded). */
function parseSettings(fields: Record<string, string>, policy: UrlPolicy): Pick<BatchIntake, 'webhookUrl' | 'options' | 'itemEvents' | 'dryRun'> {
  const { webhookUrl, options } = parseJobFields({ webhook_url: fields.webhook_url, options: fields.options } as Record<string, string>, policy);
  const events = fields.item_events;
  if (events !== undefined && !BOOLEAN.includes(events)) throw new ApiError(422, 'invalid_item_events', 'item_events must be true or false');
  if (fields.dry_run !== undefined && !BOOLEAN.includes(fields.dry_run)) throw new ApiError(422, 'invalid_dry_run', 'dry_run must be true or false');
  return { webhookUrl, options, itemEvents: events === 'true', dryRun: fields.dry_run === 'true' };
}

/** JSON: `{ items: [{ image_url, client_ref?, metadata? }], webhook_url?, options?, item_events? }`. */
export function jsonIntake(body: unknown, limits: IntakeLimits): BatchIntake {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('invalid_request', 'The JSON body must be an object with an "items" array');
  const fields: Record<string, string> = {};
  let rawItems: unknown;
  for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
    if (name === 'items') rawItems = value;
    else if (SETTINGS.has(name)) fields[name] = typeof value === 'string' ? value : JSON.stringify(value);
    else throw badRequest('unknown_field', `Unknown field "${name.slice(0, 100)}"`);
  }
  if (!Array.isArray(rawItems)) throw badRequest('invalid_request', 'The JSON body needs an "items" array');
  if (rawItems.length > limits.maxItems) throw tooMany(limits.maxItems);
  const items: BatchItem[] = [];
  const rejected: RejectedRow[] = [];
  rawItems.forEach((raw, index) => {
    const item = urlItem(raw, limits.policy);
    if (typeof item === 'string') rejected.push({ row: index + 1, reason: item });
    else items.push(item);
  });
  const fingerprint = sha256Hex(JSON.stringify(body));
  return { items, rejected, ...parseSettings(fields, limits.policy), fingerprint };
}

/**
 * Multipart: a `manifest` CSV part, or many `file` parts (each an item named by its file
 * name), plus the settings as fields. Files stream to S3 one after another; a file that
 * is not a usable image becomes a rejected row. `stored` collects the keys written so the
 * caller can delete them if the batch is not created.
 */
export async function multipartIntake(request: FastifyRequest, limits: IntakeLimits, stored: string[]): Promise<BatchIntake> {
  const fields: Record<string, string> = {};
  const items: BatchItem[] = [];
  const rejected: RejectedRow[] = [];
  const hashes: string[] = [];
  let manifest: string | undefined;
  let files = 0;
  const parts = request.parts({ limits: { files: limits.maxItems + 1, parts: limits.maxItems + 10, fileSize: limits.maxBytes } });
  // A malformed or cut-off body is the client's doing (400), as for single uploads.
  for await (const part of clientStream(parts)) {
    if (part.type === 'field') {
      if (!SETTINGS.has(part.fieldname)) throw badRequest('unknown_field', `Unknown field "${part.fieldname}"`);
      if (part.fieldname in fields) throw badRequest('duplicate_field', `Field "${part.fieldname}" was sent twice`);
      // Files stream to S3 as they come: a dry run must be known before the first one.
      if (part.fieldname === 'dry_run' && files > 0) throw badRequest('invalid_request', 'Send the dry_run field before the first "file" part');
      fields[part.fieldname] = String(part.value);
      continue;
    }
    if (part.fieldname === 'manifest') {
      if (manifest !== undefined || files > 0) throw badRequest('ambiguous_items', 'Send one "manifest" CSV or "file" parts, not both');
      const bytes = await part.toBuffer();
      if (part.file.truncated) throw new ApiError(413, 'file_too_large', `The manifest is larger than the limit of ${limits.maxBytes} bytes`);
      manifest = bytes.toString('utf8');
      continue;
    }
    if (part.fieldname !== 'file') {
      part.file.resume();
      throw badRequest('unknown_field', `Unexpected file field "${part.fieldname}"; send images as "file" or a CSV as "manifest"`);
    }
    if (manifest !== undefined) throw badRequest('ambiguous_items', 'Send one "manifest" CSV or "file" parts, not both');
    files += 1;
    if (files > limits.maxItems) throw tooMany(limits.maxItems);
    const jobId = newJobId();
    const key = originalKey(limits.tenantId, jobId);
    const file = part.file;
    const storage = fields.dry_run === 'true' ? limits.dryRunStorage : limits.storage;
    try {
      if (storage === limits.storage) stored.push(key);
      const original = await storeImage(
        { chunks: clientStream(file)[Symbol.asyncIterator]() as AsyncIterator<Buffer>, truncated: () => file.truncated, discard: () => void file.resume() },
        { storage, objectKey: key, maxBytes: limits.maxBytes, maxPixels: limits.maxPixels },
      );
      hashes.push(original.sha256);
      items.push({ kind: 'file', jobId, original, clientRef: sanitizeFileName(part.filename, `file-${files}`) });
    } catch (error) {
      if (!(error instanceof ImageInputError)) throw error;
      // The rest of a refused file is drained so the next part can be read.
      file.resume();
      await storage.delete(key).catch(() => undefined);
      rejected.push({ row: files, reason: `${error.code}: ${error.message}` });
    }
  }
  if (manifest !== undefined) {
    let rows: string[][];
    try {
      rows = parseCsv(manifest);
    } catch (error) {
      if (error instanceof CsvError) throw new ApiError(422, 'invalid_manifest', `The manifest is not valid CSV: ${error.message}`);
      throw error;
    }
    if (rows.length - 1 > limits.maxItems) throw tooMany(limits.maxItems);
    const parsed = csvItems(rows, limits.policy);
    if (typeof parsed === 'string') throw new ApiError(422, 'invalid_manifest', parsed);
    items.push(...parsed.items.map(({ item }) => item));
    rejected.push(...parsed.rejected);
    hashes.push(sha256Hex(manifest));
  } else if (files === 0) {
    throw badRequest('missing_items', 'Send JSON with "items", a "manifest" CSV part, or "file" parts');
  }
  const fingerprint = sha256Hex(JSON.stringify([hashes, Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1))]));
  return { items, rejected, ...parseSettings(fields, limits.policy), fingerprint };
}
