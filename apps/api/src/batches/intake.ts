import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { MANIFEST_MEDIA_TYPES } from '../contract/batches.ts';
import { ApiError, badRequest } from '../http/errors.ts';
import { urlItem } from './items.ts';
import { bodyChunks, readJsonBody } from '../intake/json-body.ts';
import { manifestFormatOf, readManifest } from './manifest.ts';
import { multipartIntake } from './multipart-intake.ts';
import {
  checkSetting,
  fingerprintOf,
  parseSettings,
  rowCollector,
  SETTINGS,
  type BatchIntake,
  type IntakeLimits,
  type ItemSink,
} from './rows.ts';

export type { BatchIntake, IntakeLimits, ItemSink } from './rows.ts';

const JSON_FIELDS: ReadonlySet<string> = new Set([...SETTINGS, 'upload_id']);

const MANIFEST_BODY_TYPES: readonly string[] = MANIFEST_MEDIA_TYPES;

/** Body types POST /v1/batches reads itself; multipart is the multipart plugin's (it reads nothing until asked). */
export const STREAMED_BODY_TYPES = ['application/json', ...MANIFEST_MEDIA_TYPES];

/**
 * Reads a batch request as it streams in, in any of its forms: a JSON body (`items`, or the
 * `upload_id` of a direct upload), a multipart form (a `manifest` part, CSV or JSON lines,
 * or `file` parts), or a manifest as the whole body (`text/csv`, `application/x-ndjson`,
 * settings in the query string). `stored` collects the keys of files written to S3.
 */
export async function readBatchRequest(
  request: FastifyRequest,
  limits: IntakeLimits,
  sink: ItemSink,
  stored: string[],
): Promise<BatchIntake> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (!MANIFEST_BODY_TYPES.includes(type) && Object.keys(request.query ?? {}).length > 0) {
    throw badRequest(
      'invalid_request',
      'Query parameters are only read with a manifest sent as the whole body; send the settings in the body',
    );
  }
  if (request.isMultipart()) return multipartIntake(request, limits, sink, stored);
  const rows = rowCollector(sink, limits.maxItems);
  if (type === 'application/json') {
    const itemsHash = createHash('sha256');
    const checkField = (name: string, value: unknown) => {
      if (checkSetting(name, value, limits.fields.json, 'body')) sink.markDryRun?.();
    };
    const body = await readJsonBody(
      bodyChunks(request),
      { array: 'items', fields: JSON_FIELDS, maxBytes: limits.maxManifestBytes, checkField },
      async (raw, index) => {
        itemsHash.update(JSON.stringify(raw) ?? 'null');
        await rows.take(index + 1, urlItem(raw, limits.policy));
      },
    );
    const { upload_id: uploadId, ...fields } = body.fields;
    const { dryRun, ...settings } = parseSettings(fields, limits.fields.json, 'body');
    if (uploadId !== undefined && body.hasArray)
      throw badRequest('ambiguous_items', 'Send "items" or an "upload_id", not both');
    if (uploadId === undefined && !body.hasArray)
      throw badRequest('missing_items', 'The JSON body needs an "items" array or an "upload_id"');
    if (uploadId !== undefined) {
      if (typeof uploadId !== 'string') throw new ApiError('upload_not_found', 'Upload not found');
      await limits.uploadRows(uploadId, rows.take);
    }
    const parts = uploadId === undefined ? itemsHash.digest('hex') : `upload:${uploadId}`;
    return {
      accepted: rows.accepted(),
      rejected: rows.rejected,
      settings,
      dryRun,
      fingerprint: fingerprintOf(parts, fields),
    };
  }
  if (MANIFEST_BODY_TYPES.includes(type)) {
    const fields = queryFields(request.query);
    // Checked before the manifest streams in, as a form's fields sent before its manifest are.
    const { dryRun, ...settings } = parseSettings(fields, limits.fields.form, 'querystring');
    if (dryRun) sink.markDryRun?.();
    const sha256 = await readManifest(
      bodyChunks(request),
      manifestFormatOf(type),
      { policy: limits.policy, maxBytes: limits.maxManifestBytes },
      rows.take,
    );
    return {
      accepted: rows.accepted(),
      rejected: rows.rejected,
      settings,
      dryRun,
      fingerprint: fingerprintOf(sha256, fields),
    };
  }
  throw new ApiError(
    'unsupported_media_type',
    'Send JSON with "items" or an "upload_id", multipart/form-data with a "manifest" or "file" parts, or a text/csv or application/x-ndjson manifest',
  );
}

/** Settings given in the query string of a manifest sent as the whole body; a JSON or form body takes none. */
function queryFields(query: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    if (!SETTINGS.has(name)) throw badRequest('invalid_request', `Unknown parameter "${name.slice(0, 100)}"`);
    if (typeof value !== 'string') throw badRequest('duplicate_field', `Query parameter "${name}" was sent twice`);
    fields[name] = value;
  }
  return fields;
}
