/** JSON Schemas of what clients receive, for the OpenAPI document. */

const nullable = (schema: Record<string, unknown>) => ({ ...schema, nullable: true });
const timestamp = { type: 'string', format: 'date-time' };

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'request_id'],
      properties: {
        code: { type: 'string', description: 'Stable snake_case code; see each response for the codes it may carry' },
        message: { type: 'string' },
        request_id: { type: 'string', example: 'req_4hS9kQ2m7Xo1Lr8Tz3Vb' },
      },
    },
  },
};

/** Why a queued job waits (README, "Poll a job"). */
const WAITING_REASONS = ['upstream_rate_limited', 'upstream_unauthorized', 'upstream_out_of_credit', 'budget_exhausted', 'retry_scheduled', 'duplicate_in_progress'];

export const jobSchema = {
  type: 'object',
  required: ['id', 'object', 'status', 'created_at'],
  properties: {
    id: { type: 'string', example: 'job_3kTq9ZbXw2Lm8Rp5Yc1Nv7Ha' },
    object: { type: 'string', enum: ['job'] },
    status: { type: 'string', enum: ['queued', 'processing', 'succeeded', 'failed', 'canceled'] },
    created_at: timestamp,
    started_at: nullable(timestamp),
    finished_at: nullable(timestamp),
    waiting_reason: nullable({ type: 'string', enum: WAITING_REASONS }),
    attempts: { type: 'integer', description: 'Attempts used; 429 pauses use none' },
    upstream_calls: { type: 'integer', description: 'Requests this job made to ByByBG' },
    credits_saved: { type: 'integer', description: '1 when an identical earlier image was reused instead of calling ByByBG' },
    input: { type: 'object', properties: { bytes: { type: 'integer' }, content_type: { type: 'string' } } },
    result: nullable({
      type: 'object',
      properties: {
        url: { type: 'string', description: 'Fresh presigned URL of the transparent PNG' },
        content_type: { type: 'string' },
        bytes: { type: 'integer' },
        expires_at: timestamp,
      },
    }),
    error: nullable({
      type: 'object',
      properties: {
        code: { type: 'string', enum: ['upstream_unavailable', 'upstream_forbidden', 'upstream_rejected', 'upstream_bad_response', 'upstream_rate_limited', 'original_missing', 'worker_crashed', 'processing_error'] },
        message: { type: 'string' },
        retryable: { type: 'boolean', description: 'Whether submitting the image again later may succeed' },
      },
    }),
    metadata: nullable({ type: 'object', additionalProperties: true }),
    batch_id: nullable({ type: 'string', description: 'The batch this job is an item of' }),
    client_ref: nullable({ type: 'string', description: "The client's name for a batch item (CSV client_ref, file name)" }),
    review: nullable({
      type: 'object',
      description: "A reviewer's verdict on the cutout (review page or PUT /v1/jobs/{id}/review)",
      properties: { verdict: { type: 'string', enum: ['rejected'] }, note: nullable({ type: 'string' }), reviewed_at: timestamp },
    }),
    rerun_of: nullable({ type: 'string', description: 'The job whose original this job processed again (POST /v1/jobs/{id}/rerun)' }),
    webhook: nullable({
      type: 'object',
      properties: {
        url: { type: 'string' },
        state: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
        attempts: { type: 'integer' },
        last_status_code: nullable({ type: 'integer' }),
        last_error: nullable({ type: 'string' }),
        last_attempt_at: nullable(timestamp),
        delivered_at: nullable(timestamp),
      },
    }),
  },
};

export const jobListSchema = {
  type: 'object',
  required: ['data', 'next_cursor'],
  properties: {
    data: { type: 'array', items: { $ref: '#/components/schemas/Job' } },
    next_cursor: nullable({ type: 'string', description: 'Pass as ?cursor= for the next page; null on the last page' }),
  },
};

export const jobSubmissionSchema = {
  type: 'object',
  properties: {
    file: { type: 'string', format: 'binary', description: 'JPEG, PNG or WebP (by its bytes), up to MAX_UPLOAD_BYTES' },
    image_url: { type: 'string', description: 'Instead of file: a public http(s) URL of the image' },
    webhook_url: { type: 'string', description: 'Public http(s) URL that receives job.succeeded / job.failed' },
    metadata: { type: 'string', description: 'JSON object up to 4 KB, returned with the job (e.g. a SKU)' },
    options: { type: 'string', description: 'JSON object of strings, forwarded to ByByBG' },
  },
};

const count = { type: 'integer' };

export const batchSchema = {
  type: 'object',
  required: ['id', 'object', 'status', 'created_at', 'counts'],
  properties: {
    id: { type: 'string', example: 'batch_7Qm2Xw9Lr4Tz1Vb8Kc3Np6Hs' },
    object: { type: 'string', enum: ['batch'] },
    status: { type: 'string', enum: ['processing', 'completed', 'canceled'] },
    created_at: timestamp,
    completed_at: nullable(timestamp),
    canceled_at: nullable(timestamp),
    counts: {
      type: 'object',
      properties: { total: count, queued: count, processing: count, succeeded: count, failed: count, canceled: count, rejected: count },
    },
    upstream_calls: { type: 'integer', description: 'Requests the items made to ByByBG' },
    credits_saved: { type: 'integer', description: 'Items whose result was reused from an identical image' },
    review: { type: 'object', description: 'Items a reviewer flagged as wrong', properties: { rejected: count } },
    eta: nullable({
      type: 'object',
      description: 'From the rate of the last ~100 items that ended',
      properties: { remaining_ms: count, items_per_second: { type: 'number' }, estimated_completion_at: timestamp },
    }),
    results_url: { type: 'string' },
    webhook_url: nullable({ type: 'string' }),
    item_events: { type: 'boolean' },
    rejected: { type: 'array', description: 'On creation only: items not accepted', items: { type: 'object', properties: { row: count, reason: { type: 'string' } } } },
  },
};

const budgetAfter = nullable({
  type: 'object',
  properties: { limit: count, used: count, remaining: { type: 'integer', description: 'Below 0: calls that would wait for the budget' }, resets_at: timestamp },
});

/** `POST /v1/batches` with `dry_run`: what the batch would cost. */
export const batchEstimateSchema = {
  type: 'object',
  required: ['object', 'items', 'rejected', 'duplicates', 'upstream_calls'],
  properties: {
    object: { type: 'string', enum: ['batch_estimate'] },
    items: count,
    rejected: { type: 'array', items: { type: 'object', properties: { row: count, reason: { type: 'string' } } } },
    duplicates: { type: 'integer', description: 'Images whose result would be reused instead of calling ByByBG' },
    upstream_calls: { type: 'integer', description: 'ByByBG calls the batch would spend' },
    upstream_calls_exact: { type: 'boolean', description: 'False when image URLs are counted one call each (their duplicates are not known before fetching)' },
    url_items: count,
    note: nullable({ type: 'string' }),
    budget_after: { type: 'object', properties: { daily: budgetAfter, monthly: budgetAfter } },
    eta_seconds: nullable({ type: 'integer' }),
    waiting_reason: nullable({ type: 'string', enum: WAITING_REASONS }),
  },
};
