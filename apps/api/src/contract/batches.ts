import { z } from 'zod';
import {
  batchViewSchema,
  JOB_ERROR_CODES,
  JOB_STATUSES,
  QUALITY_FLAGS,
  renditionViewSchema,
  WAITING_REASONS,
} from '@cutout/shared/views';
import { batchIdParams, idempotencyKeyHeader, pageQuery } from './common.ts';
import { fieldSchemas } from './fields.ts';
import { jobListSchema, type ContractSettings } from './jobs.ts';
import { rejectedRowSchema, type OperationSpec } from './operation.ts';

/** Media types of a manifest sent as the whole body of `POST /v1/batches` (CSV, JSON lines under its several names). */
export const MANIFEST_MEDIA_TYPES = [
  'text/csv',
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/x-jsonlines',
] as const;

/** A batch as `POST /v1/batches` (and a rerun) answers it: with the rows it did not accept. */
const createdBatchSchema = batchViewSchema
  .extend({
    rejected: z.array(rejectedRowSchema).describe('The items not accepted, with why; the others go ahead'),
  })
  .meta({ id: 'CreatedBatch' });

/** One line of the results manifest (JSON lines; the CSV has the same columns, one URL column per rendition). */
const manifestRowSchema = z
  .object({
    client_ref: z.string().nullable(),
    job_id: z.string(),
    status: z.enum([...JOB_STATUSES, 'expired']).describe("expired: the item's record is past its retention"),
    result_url: z.string().nullable().describe('A fresh presigned URL of the cutout, once it succeeded'),
    error_code: z.enum(JOB_ERROR_CODES).nullable(),
    error_message: z.string().nullable(),
    review: z.literal('rejected').nullable().describe('rejected: a reviewer flagged the cutout'),
    quality_flags: z.array(z.enum(QUALITY_FLAGS)).nullable(),
    renditions: z.record(z.string(), renditionViewSchema).nullable(),
  })
  .meta({ id: 'ManifestRow' });

const budgetAfterSchema = z
  .object({
    limit: z.int(),
    used: z.int(),
    remaining: z.int().describe('Below 0: calls that would wait for the budget'),
    resets_at: z.iso.datetime(),
  })
  .nullable();

/** `POST /v1/batches` with `dry_run`: what the batch would cost. */
const batchEstimateSchema = z
  .object({
    object: z.literal('batch_estimate'),
    items: z.int().describe('Items that would be accepted'),
    rejected: z.array(rejectedRowSchema),
    duplicates: z.int().describe('Images whose result would be reused instead of calling ByByBG'),
    upstream_calls: z.int().describe('ByByBG calls the batch would spend'),
    upstream_calls_exact: z
      .boolean()
      .describe('false when image URLs are counted one call each (their duplicates are not known before fetching)'),
    url_items: z.int(),
    note: z.string().nullable(),
    budget_after: z.object({ daily: budgetAfterSchema, monthly: budgetAfterSchema }),
    eta_seconds: z
      .int()
      .nullable()
      .describe('At the current upstream rate, behind the jobs queued now; null while unknown or held'),
    waiting_reason: z.enum(WAITING_REASONS).nullable().describe("Why the batch's jobs would wait right now"),
  })
  .meta({ id: 'BatchEstimate' });

const urlItemSchema = z
  .object({
    image_url: z.string().describe('A public http(s) URL; the workers fetch it through the address guard'),
    client_ref: z.string().max(256).optional().describe('Your name for the item (a SKU), echoed in the manifest'),
    metadata: z.record(z.string(), z.unknown()).optional().describe('A JSON object of at most 4 KB'),
  })
  .meta({ id: 'BatchItem' });

/** The operations on batches: submit, read, its results manifest and jobs, rerun, cancel. */
export function batchOperations({ rules, maxBatchItems, maxManifestBytes, maxUploadBytes }: ContractSettings) {
  const { json, form } = fieldSchemas(rules);
  const settings = {
    webhook_url: json.webhook_url
      .optional()
      .describe('Receives batch.completed once, when the last item ends (and item events with item_events)'),
    options: json.options.optional(),
    renditions: json.renditions.optional(),
    item_events: json.item_events.optional(),
  };
  const itemsJson = z
    .strictObject({
      items: z
        .array(urlItemSchema)
        .max(maxBatchItems)
        .describe('Each item is checked on its own: a bad one is a rejected row, not a refused batch'),
      ...settings,
      dry_run: json.dry_run.optional(),
    })
    .meta({ id: 'BatchRequest' });
  const uploadJson = z
    .strictObject({
      upload_id: z
        .string()
        .describe(
          'A direct upload (POST /v1/uploads) whose files become the items, client_ref = file name; one upload makes one batch',
        ),
      ...settings,
      dry_run: json.dry_run.optional(),
    })
    .meta({ id: 'UploadBatchRequest' });
  const manifest = z
    .string()
    .describe(
      `One item per row, read as it streams in: CSV with a header (image_url,client_ref,…; other columns become metadata), or JSON lines (one item object per line); at most ${maxManifestBytes} bytes`,
    );
  const batchForm = z.object({
    manifest: z
      .string()
      .meta({ format: 'binary' })
      .optional()
      .describe(
        `A CSV manifest, or JSON lines (by media type application/x-ndjson or a .jsonl/.ndjson file name), at most ${maxManifestBytes} bytes, read row by row`,
      ),
    file: z
      .array(z.string().meta({ format: 'binary' }))
      .optional()
      .describe(`Images, one part each (client_ref = the file name), each at most ${maxUploadBytes} bytes`),
    webhook_url: form.webhook_url.optional(),
    options: form.options.optional(),
    renditions: form.renditions.optional(),
    item_events: form.item_events.optional(),
    dry_run: form.dry_run.optional().describe('"true": estimate only; send it before the first file part'),
  });
  /** A manifest sent as the whole body takes its settings in the query string, as text (as a form's fields). */
  const text = (description: string) => z.string().optional().describe(description);
  const manifestQuery = z.strictObject({
    webhook_url: text('As in a JSON body'),
    options: text('A JSON object, as text'),
    renditions: text('A JSON array of rendition specs, as text'),
    item_events: text('"true" or "false"'),
    dry_run: text('"true": estimate only'),
  });
  const batchErrors = [
    'invalid_request',
    'unknown_field',
    'duplicate_field',
    'missing_items',
    'ambiguous_items',
    'invalid_multipart',
    'too_many_parts',
    'invalid_idempotency_key',
    'idempotency_key_reused',
    'idempotency_request_in_progress',
    'too_many_items',
    'file_too_large',
    'payload_too_large',
    'unsupported_media_type',
    'no_valid_items',
    'invalid_manifest',
    'invalid_webhook_url',
    'invalid_options',
    'invalid_renditions',
    'invalid_item_events',
    'invalid_dry_run',
    'upload_not_found',
    'upload_already_used',
    'upload_expired',
  ] as const;
  return {
    createBatch: {
      method: 'POST',
      url: '/v1/batches',
      operationId: 'createBatch',
      tags: ['batches'],
      scope: 'jobs:write',
      summary: 'Submit a batch of images',
      description: [
        `Up to ${maxBatchItems} items, read as the body streams in (413 too_many_items at the first row past the limit): JSON with \`items\` (image URLs) or the \`upload_id\` of a direct upload;`,
        'multipart with a `manifest` part or many `file` parts; or a CSV (`text/csv`) or JSON-lines (`application/x-ndjson`) manifest as the whole body, with the settings in the query string.',
        'Bad items are listed in `rejected`; the others go ahead. URL and uploaded items are fetched and checked by the workers.',
        'The batch is `creating` until the whole request is read; one whose creation stops half-way becomes `failed_to_create` and none of its items run.',
      ].join(' '),
      querystring: manifestQuery,
      headers: z.object({ 'idempotency-key': idempotencyKeyHeader }),
      requestBody: {
        required: true,
        content: {
          'application/json': z.union([itemsJson, uploadJson]),
          'multipart/form-data': batchForm,
          ...Object.fromEntries(MANIFEST_MEDIA_TYPES.map((type) => [type, manifest])),
        },
      },
      responses: {
        200: {
          description: 'With dry_run: what the batch would cost; nothing was created, stored or called',
          json: batchEstimateSchema,
        },
        202: {
          description: 'Accepted: the batch, with the rejected rows; Location names it',
          json: createdBatchSchema,
          headers: ['location', 'idempotent-replayed'],
        },
      },
      errors: batchErrors,
    },
    getBatch: {
      method: 'GET',
      url: '/v1/batches/:id',
      operationId: 'getBatch',
      tags: ['batches'],
      scope: 'jobs:read',
      summary: 'Status of a batch: counts, upstream calls, credits saved, ETA',
      params: batchIdParams,
      responses: { 200: { description: 'The batch', json: batchViewSchema } },
      errors: ['not_found'],
    },
    getBatchResults: {
      method: 'GET',
      url: '/v1/batches/:id/results',
      operationId: 'getBatchResults',
      tags: ['batches'],
      scope: 'jobs:read',
      summary: 'The results manifest: every item, in submission order',
      description:
        "Streamed; partial while the batch runs. JSON lines by default; CSV with ?format=csv or Accept: text/csv (cells starting with =, +, -, @, tab or CR are prefixed with ').",
      params: batchIdParams,
      querystring: z.object({
        format: z
          .enum(['jsonl', 'json', 'csv'], { error: 'format must be jsonl or csv' })
          .optional()
          .describe('jsonl (default) or csv; wins over Accept'),
      }),
      headers: z.object({ accept: z.string().optional() }),
      responses: {
        200: {
          description: 'One line per item',
          headers: ['content-disposition'],
          content: {
            'application/x-ndjson': manifestRowSchema,
            'text/csv': z.string().describe('A header row, then one row per item'),
          },
        },
      },
      errors: ['not_found', 'invalid_request'],
    },
    listBatchJobs: {
      method: 'GET',
      url: '/v1/batches/:id/jobs',
      operationId: 'listBatchJobs',
      tags: ['batches'],
      scope: 'jobs:read',
      summary: "A batch's jobs, page by page",
      description:
        'All in submission order; with status=succeeded|failed|canceled those that ended so, in the order they ended; review=rejected the ones a reviewer flagged; quality=flagged the ones the automatic checks flagged.',
      params: batchIdParams,
      querystring: z
        .object({
          status: z.enum(JOB_STATUSES, { error: `status must be one of ${JOB_STATUSES.join(', ')}` }).optional(),
          review: z.literal('rejected', { error: 'review must be rejected' }).optional(),
          quality: z.literal('flagged', { error: 'quality must be flagged' }).optional(),
          ...pageQuery,
        })
        .refine((query) => !(query.review && query.quality), 'Filter by review or by quality, not both'),
      responses: { 200: { description: 'A page of jobs', json: jobListSchema } },
      errors: ['not_found', 'invalid_request', 'invalid_cursor'],
    },
    rerunBatch: {
      method: 'POST',
      url: '/v1/batches/:id/rerun',
      operationId: 'rerunBatch',
      tags: ['batches'],
      scope: 'jobs:write',
      summary: "A new batch of this batch's flagged or failed items",
      description:
        "Items that were never fetched are fetched again; each item keeps its metadata. Options and renditions default to the source's.",
      params: batchIdParams,
      headers: z.object({ 'idempotency-key': idempotencyKeyHeader }),
      body: z.strictObject({
        items: z.enum(['rejected', 'quality_flagged', 'failed'], {
          error:
            'items must be "rejected" (flagged by a reviewer), "quality_flagged" (by the automatic checks) or "failed"',
        }),
        ...settings,
      }),
      responses: {
        202: {
          description: 'The new batch; Location names it',
          json: createdBatchSchema,
          headers: ['location', 'idempotent-replayed'],
        },
      },
      errors: [
        'not_found',
        'invalid_request',
        'unknown_field',
        'unsupported_media_type',
        'invalid_idempotency_key',
        'idempotency_key_reused',
        'idempotency_request_in_progress',
        'nothing_to_rerun',
        'invalid_options',
        'invalid_renditions',
        'invalid_webhook_url',
        'invalid_item_events',
      ],
    },
    cancelBatch: {
      method: 'DELETE',
      url: '/v1/batches/:id',
      operationId: 'cancelBatch',
      tags: ['batches'],
      scope: 'jobs:write',
      summary: 'Cancel every item not yet started',
      params: batchIdParams,
      responses: { 200: { description: 'The batch, canceled (items already started finish)', json: batchViewSchema } },
      errors: ['not_found'],
    },
  } as const satisfies Record<string, OperationSpec>;
}
