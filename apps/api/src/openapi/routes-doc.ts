/**
 * Documentation of every route: summary, parameters and each status with the error codes
 * it may carry. Kept in one table so the document lists every code in one place.
 */
type Doc = {
  summary: string; tags: string[]; description?: string; responses: Record<number, string>; params?: string[]; query?: Record<string, string>; headers?: Record<string, string>; body?: 'job' | 'json';
  /** A schema of components/schemas for a status whose body is not what the path implies. */
  schemas?: Record<number, string>;
};

const AUTH = { 401: 'missing_api_key, invalid_api_key, revoked_api_key, review_link_not_api_key', 403: 'insufficient_scope', 429: 'rate_limited (Retry-After, X-RateLimit-*)' };
const NOT_FOUND = { 404: 'not_found (also for another tenant\'s ids)' };

export const ROUTE_DOCS: Record<string, Doc> = {
  'POST /v1/jobs': {
    summary: 'Submit an image', tags: ['jobs'], body: 'job',
    description: 'Multipart with `file`, or JSON / form with `image_url`. `Prefer: wait=N` (≤ 60) waits for the result.',
    headers: { 'idempotency-key': 'Same key + same request within 24 h returns the first answer', prefer: 'wait=N' },
    responses: {
      200: 'The job ended within Prefer: wait', 202: 'Accepted and queued; Location names the job',
      400: 'missing_file, empty_file, too_many_files, unknown_field, duplicate_field, ambiguous_image, invalid_multipart, invalid_idempotency_key, invalid_request',
      ...AUTH,
      409: 'idempotency_key_reused, idempotency_request_in_progress',
      413: 'file_too_large, field_too_large, payload_too_large',
      415: 'unsupported_media_type (judged by the bytes)',
      422: 'invalid_webhook_url, invalid_metadata, invalid_options, invalid_image, image_too_large, image_truncated, invalid_image_url, image_url_unreachable',
      503: 'service_unavailable (nothing was stored; retry)',
    },
  },
  'GET /v1/jobs': {
    summary: "List this tenant's jobs, newest first", tags: ['jobs'],
    query: { status: 'queued | processing | succeeded | failed | canceled', batch_id: "only this batch's jobs, in submission order", limit: '1–100, default 20', cursor: 'next_cursor of the previous page' },
    responses: { 200: 'A page of jobs', 400: 'invalid_request, invalid_cursor', ...AUTH },
  },
  'GET /v1/jobs/:id': {
    summary: 'Status of a job', tags: ['jobs'], params: ['id'],
    headers: { prefer: 'wait=N holds the answer until the job ends (≤ 60 s)', 'if-none-match': 'ETag of an earlier answer' },
    responses: { 200: 'The job', 304: 'Unchanged since the ETag', ...AUTH, ...NOT_FOUND },
  },
  'DELETE /v1/jobs/:id': {
    summary: 'Cancel a queued job', tags: ['jobs'], params: ['id'],
    responses: { 200: 'The canceled job', ...AUTH, ...NOT_FOUND, 409: 'job_already_started, job_finished' },
  },
  'GET /v1/jobs/:id/result': {
    summary: 'Redirect to the result', tags: ['jobs'], params: ['id'],
    responses: { 302: 'Location is a fresh presigned URL of the PNG', ...AUTH, ...NOT_FOUND, 409: 'result_not_ready' },
  },
  'POST /v1/batches': {
    summary: 'Submit a batch of images, or estimate it (dry_run)', tags: ['batches'], body: 'json', schemas: { 200: 'BatchEstimate' },
    description: 'JSON `{items: [{image_url, client_ref?, metadata?}], webhook_url?, options?, item_events?}`; or multipart with a `manifest` CSV part (header `image_url,client_ref,…`, other columns become metadata); or many `file` parts (client_ref = file name). Up to MAX_BATCH_ITEMS items. Bad items are listed in `rejected: [{row, reason}]`; URL items are fetched by the workers. With `dry_run: true` (a `dry_run` field before the files, for multipart) nothing is created: the answer is `200` with `{object: "batch_estimate", items, rejected, duplicates, upstream_calls, upstream_calls_exact, url_items, note, budget_after, eta_seconds, waiting_reason}`.',
    headers: { 'idempotency-key': 'Same key + same request within 24 h returns the first answer' },
    responses: {
      200: 'A dry run: the estimate; nothing was created',
      202: 'Accepted: the batch, with `rejected` rows; Location names it',
      400: 'invalid_request (also a dry_run field after a file part), unknown_field, duplicate_field, missing_items, ambiguous_items, invalid_idempotency_key',
      ...AUTH,
      409: 'idempotency_key_reused, idempotency_request_in_progress',
      413: 'too_many_items, file_too_large, payload_too_large',
      415: 'unsupported_media_type',
      422: 'no_valid_items (error.rejected lists every row), invalid_manifest, invalid_webhook_url, invalid_options, invalid_item_events, invalid_dry_run',
      503: 'service_unavailable',
    },
  },
  'GET /v1/batches/:id': {
    summary: 'Status of a batch: counts, upstream calls, credits saved, ETA', tags: ['batches'], params: ['id'],
    responses: { 200: 'The batch', ...AUTH, ...NOT_FOUND },
  },
  'GET /v1/batches/:id/results': {
    summary: 'Manifest of every item (client_ref, job_id, status, result_url, error_code, error_message, review), streamed', tags: ['batches'], params: ['id'],
    query: { format: 'jsonl (default) or csv; Accept: text/csv also selects CSV' },
    responses: { 200: 'JSON lines or CSV, one row per item in submission order; result URLs are fresh presigned URLs', 400: 'invalid_request', ...AUTH, ...NOT_FOUND },
  },
  'GET /v1/batches/:id/jobs': {
    summary: "A batch's jobs in submission order, or those that ended with one status (in the order they ended), or those flagged", tags: ['batches'], params: ['id'],
    query: { status: 'queued | processing | succeeded | failed | canceled', review: 'rejected: items a reviewer flagged', limit: '1–100, default 20', cursor: 'next_cursor of the previous page' },
    responses: { 200: 'A page of jobs', 400: 'invalid_request, invalid_cursor', ...AUTH, ...NOT_FOUND },
  },
  'DELETE /v1/batches/:id': {
    summary: 'Cancel every item not yet started; started ones finish', tags: ['batches'], params: ['id'],
    responses: { 200: 'The batch, status canceled (completed if it had ended)', ...AUTH, ...NOT_FOUND },
  },
  'POST /v1/batches/:id/rerun': {
    summary: "A new batch of this batch's flagged or failed items", tags: ['batches'], params: ['id'], body: 'json',
    description: 'JSON `{items: "rejected" | "failed", options?, webhook_url?, item_events?}`. Items with a stored original run on a copy of it; URL items that failed before they were fetched are fetched again. The new batch has `rerun_of`; items that can no longer be rerun are listed in `rejected`.',
    headers: { 'idempotency-key': 'Same key + same request within 24 h returns the first answer' },
    responses: {
      202: 'The new batch; Location names it', 400: 'invalid_request, unknown_field, invalid_idempotency_key', ...AUTH, ...NOT_FOUND,
      409: 'idempotency_key_reused, idempotency_request_in_progress', 422: 'nothing_to_rerun, invalid_options, invalid_webhook_url, invalid_item_events', 503: 'service_unavailable',
    },
  },
  'POST /v1/batches/:id/review-link': {
    summary: 'A signed, expiring link to the review page of a batch (no API key reaches the browser)', tags: ['review'], params: ['id'], body: 'json',
    description: 'Optional JSON `{expires_in: seconds}` (60 to 2,592,000; default REVIEW_LINK_TTL, 24 h). The link opens this batch only and is refused on every /v1 route.',
    responses: { 201: '{object: "review_link", url, batch_id, expires_at}', 400: 'invalid_request', ...AUTH, ...NOT_FOUND },
  },
  'POST /v1/jobs/:id/review-link': {
    summary: 'A signed, expiring link to the review page of one job', tags: ['review'], params: ['id'], body: 'json',
    responses: { 201: '{object: "review_link", url, job_id, expires_at}', 400: 'invalid_request', ...AUTH, ...NOT_FOUND },
  },
  'DELETE /v1/batches/:id/review-links': {
    summary: 'Revoke every review link to this batch issued so far (links made afterwards work)', tags: ['review'], params: ['id'],
    responses: { 200: '{object: "review_link_revocation", batch_id, revoked_at}', ...AUTH, ...NOT_FOUND },
  },
  'DELETE /v1/jobs/:id/review-links': {
    summary: 'Revoke every review link to this job issued so far', tags: ['review'], params: ['id'],
    responses: { 200: '{object: "review_link_revocation", job_id, revoked_at}', ...AUTH, ...NOT_FOUND },
  },
  'PUT /v1/jobs/:id/review': {
    summary: "Flag a succeeded job's cutout as wrong", tags: ['review'], params: ['id'], body: 'json',
    description: 'JSON `{verdict: "rejected", note?}` (note ≤ 500 characters). The job shows `review`, its batch counts it in `review.rejected`, the manifest has `review: rejected`, and the result is no longer reused for identical images.',
    responses: { 200: 'The job', 400: 'invalid_request', ...AUTH, ...NOT_FOUND, 409: 'not_reviewable (only succeeded jobs have a cutout to judge)' },
  },
  'DELETE /v1/jobs/:id/review': {
    summary: "Clear a job's review verdict", tags: ['review'], params: ['id'],
    responses: { 200: 'The job', ...AUTH, ...NOT_FOUND, 409: 'not_reviewable' },
  },
  'POST /v1/jobs/:id/rerun': {
    summary: "A new job on a copy of this job's original, e.g. with other options", tags: ['jobs'], params: ['id'], body: 'json',
    description: 'Optional JSON `{options?, webhook_url?, metadata?}`; each defaults to the original job\'s. The new job has `rerun_of`. Same options as an earlier unflagged result reuse it (credits_saved); a flagged result is never reused.',
    responses: { 202: 'The new job; Location names it', 400: 'invalid_request', ...AUTH, ...NOT_FOUND, 409: 'job_not_finished, original_missing', 422: 'invalid_options, invalid_webhook_url, invalid_metadata', 503: 'service_unavailable' },
  },
  'GET /v1/account': { summary: 'Tenant, scopes, limits, usage today, budget of upstream calls and webhook signing secret', tags: ['account'], responses: { 200: 'The account; `budget: {daily, monthly}`, each `{limit, used, resets_at}` or null when unset', ...AUTH } },
  'GET /v1/account/usage': {
    summary: 'Usage per UTC day: jobs submitted, succeeded and failed, upstream calls, credits saved', tags: ['account'],
    query: { from: 'YYYY-MM-DD (UTC), default 29 days before `to`, not before the 35 days kept', to: 'YYYY-MM-DD (UTC), default today' },
    responses: { 200: '`{object: "usage", from, to, data: [{date, jobs, jobs_succeeded, jobs_failed, upstream_calls, credits_saved}], totals}`, oldest day first', 400: 'invalid_request (a malformed date, to before from, more than 35 days, a day no longer kept, a day after today)', ...AUTH },
  },
  'GET /healthz': { summary: 'Liveness', tags: ['operations'], responses: { 200: 'The process is alive' } },
  'GET /readyz': { summary: 'Readiness: Redis (noeviction), S3, ByByBG holds (every key refused, out of credit), current upstream rate', tags: ['operations'], responses: { 200: 'Ready, or degraded while the queue is held (checks.upstream.reason)', 503: 'Redis or S3 unreachable' } },
};

export type { Doc };
