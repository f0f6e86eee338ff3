import type { FastifyRequest } from 'fastify';
import type { Multipart, MultipartFile } from '@fastify/multipart';
import type { Readable } from 'node:stream';
import {
  ImageInputError, newJobId, originalKey, sha256Hex, storeImage,
  type ImageSource, type RenditionPlan, type Storage, type UrlPolicy,
} from '@cutout/shared';
import { z } from 'zod';
import { badRequest } from '../errors.ts';
import type { FieldSchemas } from '../contract/fields.ts';
import { parseOrThrow } from '../contract/validation.ts';
import { clientStream } from '../uploads.ts';
import { sanitizeFileName, tooManyItems, urlItem, type BatchItem, type RejectedRow } from './items.ts';
import { readManifest } from './manifest.ts';

/** A batch request, validated: accepted items in order, rejected rows, and the batch-wide settings. */
export interface BatchIntake {
  items: BatchItem[];
  rejected: RejectedRow[];
  webhookUrl?: string;
  options?: Record<string, string>;
  renditionPlans?: RenditionPlan[];
  itemEvents: boolean;
  /** `dry_run`: estimate the batch (estimate.ts) instead of creating it. */
  dryRun: boolean;
  /** Same request, same fingerprint: what Idempotency-Key replays are checked against. */
  fingerprint: string;
}

export interface IntakeLimits {
  storage: Storage; tenantId: string; policy: UrlPolicy;
  /** How each batch-wide setting is validated, as JSON and as form text. */
  fields: FieldSchemas;
  /** Where a dry run's files go: checked and hashed as they stream, stored nowhere. */
  dryRunStorage: Storage;
  maxItems: number; maxBytes: number; maxPixels: number;
  /** Largest CSV manifest (MAX_MANIFEST_BYTES); `maxBytes` is each image file's. */
  maxManifestBytes: number;
}

/** The batch-wide settings, validated: as a JSON body gives them, or as a form's text. */
export interface BatchSettings { webhook_url?: string; options?: Record<string, string>; renditions?: RenditionPlan[]; item_events?: boolean; dry_run?: boolean }

const SETTING_NAMES = ['webhook_url', 'options', 'renditions', 'item_events', 'dry_run'] as const;

const settingsOf = (settings: BatchSettings): Pick<BatchIntake, 'webhookUrl' | 'options' | 'renditionPlans' | 'itemEvents' | 'dryRun'> => ({
  webhookUrl: settings.webhook_url, options: settings.options, renditionPlans: settings.renditions, itemEvents: settings.item_events ?? false, dryRun: settings.dry_run ?? false,
});

/** JSON: `{ items: [{ image_url, client_ref?, metadata? }], …settings }`, the settings already validated; each item is checked on its own. */
export function jsonIntake(body: BatchSettings & { items: unknown[] }, limits: IntakeLimits): BatchIntake {
  const { items: rawItems, ...settings } = body;
  if (rawItems.length > limits.maxItems) throw tooManyItems(limits.maxItems);
  const items: BatchItem[] = [];
  const rejected: RejectedRow[] = [];
  rawItems.forEach((raw, index) => {
    const item = urlItem(raw, limits.policy);
    if (typeof item === 'string') rejected.push({ row: index + 1, reason: item });
    else items.push(item);
  });
  const fingerprint = sha256Hex(JSON.stringify(body));
  return { items, rejected, ...settingsOf(settings), fingerprint };
}

/** What the parts of a multipart batch gave so far. */
interface PartsRead { fields: Record<string, string>; settings: BatchSettings; items: BatchItem[]; rejected: RejectedRow[]; hashes: string[]; manifest: boolean; files: number }

/**
 * Multipart: a `manifest` CSV part, or many `file` parts (each an item named by its file
 * name), plus the settings as fields. The manifest is read row by row as it arrives; files
 * stream to S3 one after another; a file that is not a usable image becomes a rejected
 * row. `stored` collects the keys written so the caller can delete them if the batch is
 * not created.
 */
export async function multipartIntake(request: FastifyRequest, limits: IntakeLimits, stored: string[]): Promise<BatchIntake> {
  const read: PartsRead = { fields: {}, settings: {}, items: [], rejected: [], hashes: [], manifest: false, files: 0 };
  // Each kind of part has its own size limit, checked as it streams; the parser's is only a
  // backstop, which cuts a part short (a rejected row or a 413 below) instead of failing the request.
  const fileSize = Math.max(limits.maxBytes, limits.maxManifestBytes) + 1;
  // The plugin reads throwFileSizeLimit per call too, though its types name it for the plugin only.
  const options = { limits: { files: limits.maxItems + 1, parts: limits.maxItems + 10, fileSize }, throwFileSizeLimit: false };
  const parts = request.parts(options);
  try {
    // A malformed or cut-off body is the client's doing (400), as for single uploads.
    for await (const part of clientStream(parts)) await takePart(part, read, limits, stored);
  } catch (error) {
    skipRestOfBody(request);
    throw error;
  }
  const { fields, items, rejected, hashes } = read;
  if (!read.manifest && read.files === 0) throw badRequest('missing_items', 'Send JSON with "items", a "manifest" CSV part, or "file" parts');
  const fingerprint = sha256Hex(JSON.stringify([hashes, Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1))]));
  return { items, rejected, ...settingsOf(read.settings), fingerprint };
}

async function takePart(part: Multipart, read: PartsRead, limits: IntakeLimits, stored: string[]): Promise<void> {
  if (part.type === 'field') {
    const name = part.fieldname as (typeof SETTING_NAMES)[number];
    if (!SETTING_NAMES.includes(name)) throw badRequest('unknown_field', `Unknown field "${part.fieldname.slice(0, 100)}"`);
    if (name in read.fields) throw badRequest('duplicate_field', `Field "${name}" was sent twice`);
    // Files stream to S3 as they come: a dry run must be known before the first one.
    if (name === 'dry_run' && read.files > 0) throw badRequest('invalid_request', 'Send the dry_run field before the first "file" part');
    read.fields[name] = String(part.value);
    // A setting sent before the files is refused before any of them streams to S3.
    const schema = z.object({ [name]: limits.fields.form[name] });
    Object.assign(read.settings, parseOrThrow(schema, { [name]: read.fields[name] }, 'fields'));
    return;
  }
  if (part.fieldname === 'manifest') {
    if (read.manifest || read.files > 0) throw badRequest('ambiguous_items', 'Send one "manifest" CSV or "file" parts, not both');
    read.manifest = true;
    const manifest = await readManifest(clientStream<Buffer>(part.file), { policy: limits.policy, maxItems: limits.maxItems, maxBytes: limits.maxManifestBytes });
    read.items.push(...manifest.items);
    read.rejected.push(...manifest.rejected);
    read.hashes.push(manifest.sha256);
    return;
  }
  if (part.fieldname !== 'file') {
    part.file.resume();
    throw badRequest('unknown_field', `Unexpected file field "${part.fieldname}"; send images as "file" or a CSV as "manifest"`);
  }
  if (read.manifest) throw badRequest('ambiguous_items', 'Send one "manifest" CSV or "file" parts, not both');
  read.files += 1;
  if (read.files > limits.maxItems) throw tooManyItems(limits.maxItems);
  await takeFile(part, read, limits, stored);
}

async function takeFile(part: MultipartFile, read: PartsRead, limits: IntakeLimits, stored: string[]): Promise<void> {
  const jobId = newJobId();
  const key = originalKey(limits.tenantId, jobId);
  const source = cappedSource(part.file, limits.maxBytes);
  const storage = read.settings.dry_run ? limits.dryRunStorage : limits.storage;
  try {
    if (storage === limits.storage) stored.push(key);
    const original = await storeImage(source, { storage, objectKey: key, maxBytes: limits.maxBytes, maxPixels: limits.maxPixels });
    read.hashes.push(original.sha256);
    read.items.push({ kind: 'file', jobId, original, clientRef: sanitizeFileName(part.filename, `file-${read.files}`) });
  } catch (error) {
    if (!(error instanceof ImageInputError)) throw error;
    // The rest of a refused file is drained so the next part can be read.
    source.discard();
    await storage.delete(key).catch(() => undefined);
    read.rejected.push({ row: read.files, reason: `${error.code}: ${error.message}` });
  }
}

/**
 * A request refused before its body ended (too many rows, a manifest over its limit) has
 * the rest of its body let through unparsed and unkept: a client that sends its whole body
 * before reading the answer still gets it, and the connection stays usable.
 */
function skipRestOfBody(request: FastifyRequest): void {
  if (request.raw.complete) return;
  request.raw.unpipe();
  request.raw.resume();
}

/**
 * An image file part that stops (and says it was cut) once it passes `maxBytes`. Once
 * read through an iterator, a stream no longer flows on resume(), so what is left of a
 * refused file is drained through the same iterator.
 */
function cappedSource(file: Readable & { truncated: boolean }, maxBytes: number): ImageSource {
  const iterator = clientStream<Buffer>(file);
  let bytes = 0;
  let over = false;
  let draining = false;
  return {
    chunks: {
      async next() {
        if (over || draining) return { value: undefined, done: true };
        const result = await iterator.next();
        if (result.done) return result;
        bytes += result.value.length;
        if (bytes <= maxBytes) return result;
        // Up to the limit, as the multipart parser's own limit would cut it.
        over = true;
        return { value: result.value.subarray(0, result.value.length - (bytes - maxBytes)), done: false };
      },
    },
    truncated: () => over || file.truncated,
    discard() {
      if (draining) return;
      draining = true;
      // Errors of a broken body reach the request's part loop, which answers them.
      void (async () => {
        while (!(await iterator.next()).done);
      })().catch(() => undefined);
    },
  };
}
