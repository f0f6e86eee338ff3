import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiError, badRequest } from '../errors.ts';
import { urlItem } from './items.ts';
import { bodyChunks, readJsonBody } from '../json-body.ts';
import { manifestFormatOf, readManifest } from './manifest.ts';
import { multipartIntake } from './multipart-intake.ts';
import { fingerprintOf, parseSettings, rowCollector, rulesOf, SETTINGS, type BatchIntake, type IntakeLimits, type ItemSink } from './rows.ts';

export type { BatchIntake, IntakeLimits, ItemSink } from './rows.ts';

const JSON_FIELDS: ReadonlySet<string> = new Set([...SETTINGS, 'upload_id']);

/** Body types POST /v1/batches reads itself; multipart is the multipart plugin's (it reads nothing until asked). */
export const STREAMED_BODY_TYPES = ['application/json', 'text/csv', 'application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines'];

/**
 * Reads a batch request as it streams in, in any of its forms: a JSON body (`items`, or the
 * `upload_id` of a direct upload), a multipart form (a `manifest` part, CSV or JSON lines,
 * or `file` parts), or a manifest as the whole body (`text/csv`, `application/x-ndjson`,
 * settings in the query string). `stored` collects the keys of files written to S3.
 */
export async function readBatchRequest(request: FastifyRequest, limits: IntakeLimits, sink: ItemSink, stored: string[]): Promise<BatchIntake> {
  if (request.isMultipart()) return multipartIntake(request, limits, sink, stored);
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const rows = rowCollector(sink, limits.maxItems);
  if (type === 'application/json') {
    const itemsHash = createHash('sha256');
    const checkField = (name: string, value: string) => void (SETTINGS.has(name) && parseSettings({ [name]: value }, rulesOf(limits)));
    const body = await readJsonBody(bodyChunks(request), { array: 'items', fields: JSON_FIELDS, maxBytes: limits.maxManifestBytes, checkField }, async (raw, index) => {
      itemsHash.update(JSON.stringify(raw) ?? 'null');
      await rows.take(index + 1, urlItem(raw, limits.policy));
    });
    const { upload_id: uploadId, ...fields } = body.fields;
    const settings = parseSettings(fields, rulesOf(limits));
    if (uploadId !== undefined && body.hasArray) throw badRequest('ambiguous_items', 'Send "items" or an "upload_id", not both');
    if (uploadId === undefined && !body.hasArray) throw badRequest('missing_items', 'The JSON body needs an "items" array or an "upload_id"');
    if (uploadId !== undefined) await limits.uploadRows(uploadId, rows.take);
    const parts = uploadId === undefined ? itemsHash.digest('hex') : `upload:${uploadId}`;
    return { accepted: rows.accepted(), rejected: rows.rejected, settings, fingerprint: fingerprintOf(parts, fields) };
  }
  if (STREAMED_BODY_TYPES.includes(type)) {
    const fields = queryFields(request.query);
    // Checked before the manifest streams in, as a form's fields sent before its manifest are.
    const settings = parseSettings(fields, rulesOf(limits));
    const sha256 = await readManifest(bodyChunks(request), manifestFormatOf(type), { policy: limits.policy, maxBytes: limits.maxManifestBytes }, rows.take);
    return { accepted: rows.accepted(), rejected: rows.rejected, settings, fingerprint: fingerprintOf(sha256, fields) };
  }
  throw new ApiError('unsupported_media_type', 'Send JSON with "items" or an "upload_id", multipart/form-data with a "manifest" or "file" parts, or a text/csv or application/x-ndjson manifest');
}

/** Settings given in the query string of a manifest sent as the whole body. */
function queryFields(query: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    if (!SETTINGS.has(name)) throw badRequest('unknown_field', `Unknown query parameter "${name.slice(0, 100)}"`);
    if (typeof value !== 'string') throw badRequest('duplicate_field', `Query parameter "${name}" was sent twice`);
    fields[name] = value;
  }
  return fields;
}
