/**
 * Documentation of every route: summary, parameters and each status with the error codes
 * it may carry. Kept in one table so the document lists every code in one place.
 */
type Doc = { summary: string; tags: string[]; description?: string; responses: Record<number, string>; params?: string[]; query?: Record<string, string>; headers?: Record<string, string>; body?: 'job' | 'json' };

const AUTH = { 401: 'missing_api_key, invalid_api_key, revoked_api_key, review_link_not_api_key', 403: 'insufficient_scope', 429: 'rate_limited (Retry-After, X-RateLimit-*)' };
const NOT_FOUND = { 404: 'not_found (also for another tenant\'s ids)' };

export const ROUTE_DOCS: Record<string, Doc> = {
  'POST /v1/jobs': {
    summary: 'Submit an image', tags: ['jobs'], body: 'job',
    description: 'Multipart with `file`, or JSON / form with `image_url`. `Prefer: wait=N` (≤ 60) waits for the result. `renditions` (a JSON array of RenditionSpec; a JSON string in a form) asks for up to 8 renditions, all made from the one ByByBG result; a bad spec is refused before anything is stored.',
    headers: { 'idempotency-key': 'Same key + same request within 24 h returns the first answer', prefer: 'wait=N' },
    responses: {
      200: 'The job ended within Prefer: wait', 202: 'Accepted and queued; Location names the job',
      400: 'missing_file, empty_file, too_many_files, unknown_field, duplicate_field, ambiguous_image, invalid_multipart, invalid_idempotency_key, invalid_request',
      ...AUTH,
      409: 'idempotency_key_reused, idempotency_request_in_progress',
      413: 'file_too_large, field_too_large, payload_too_large',
      415: 'unsupported_media_type (judged by the bytes)',
      422: 'invalid_webhook_url, invalid_metadata, invalid_options, invalid_renditions (the message names the spec and the field), invalid_image, image_too_large, image_truncated, invalid_image_url, image_url_unreachable',
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
  'GET /v1/jobs/:id/renditions/:name': {
    summary: 'Redirect to one rendition', tags: ['jobs'], params: ['id', 'name'],
    responses: {
      302: 'Location is a fresh presigned URL of the rendition', ...AUTH,
      404: 'not_found (also a name the job did not ask for, and another tenant\'s job)',
      409: 'result_not_ready (the job has not succeeded), rendition_failed (it could not be made; the message says why)',
    },
  },
  'POST /v1/batches': {
    summary: 'Submit a batch of images', tags: ['batches'], body: 'json',
    description: 'JSON `{items: [{image_url, client_ref?, metadata?}], webhook_url?, options?, renditions?, item_events?}`, or `{upload_id, …the same settings}` to make the files of a direct upload a batch (client_ref = file name; files not uploaded, or of another size than declared, are rejected rows: upload_missing, upload_size_mismatch); or multipart with a `manifest` part (CSV with header `image_url,client_ref,…`, other columns become metadata; or JSON lines, one item object per line, by media type application/x-ndjson or a .jsonl/.ndjson file name); or many `file` parts (client_ref = file name); or a CSV (`text/csv`) or JSON-lines (`application/x-ndjson`) manifest as the whole body, settings in the query string. Up to MAX_BATCH_ITEMS items (100,000), read as the body streams in (413 too_many_items at the first row past the limit); manifests and JSON bodies up to MAX_MANIFEST_BYTES. Bad items are listed in `rejected: [{row, reason}]`; URL and uploaded items are fetched and checked by the workers. The batch is `creating` until the whole request is read; one whose creation stops half-way becomes `failed_to_create`, none of its items run.',
    headers: { 'idempotency-key': 'Same key + same request within 24 h returns the first answer; a retry of a request that died half-way replaces its batch' },
    responses: {
      202: 'Accepted: the batch, with `rejected` rows; Location names it',
      400: 'invalid_request, unknown_field, duplicate_field, missing_items, ambiguous_items, invalid_idempotency_key, invalid_multipart',
      ...AUTH,
      404: 'upload_not_found',
      409: 'idempotency_key_reused, idempotency_request_in_progress (Retry-After), upload_already_used',
      410: 'upload_expired',
      413: 'too_many_items, file_too_large, payload_too_large',
      415: 'unsupported_media_type',
      422: 'no_valid_items (error.rejected lists every row), invalid_manifest, invalid_webhook_url, invalid_options, invalid_renditions, invalid_item_events',
      503: 'service_unavailable',
    },
  },
  'POST /v1/uploads': {
    summary: 'Declare files to upload straight to S3; one presigned PUT URL per file', tags: ['uploads'], body: 'json',
    description: 'JSON `{files: [{name, content_type, bytes}]}` (up to MAX_BATCH_ITEMS files; content_type image/jpeg, image/png or image/webp; bytes ≤ MAX_UPLOAD_BYTES). → `{object: "upload", id, status, expires_at, files: [{name, content_type, bytes, put_url, headers}]}`: PUT each file to its `put_url` with exactly `headers` (Content-Type and Content-Length are signed) before `expires_at` (UPLOAD_URL_TTL, 1 h), then `POST /v1/batches {"upload_id"}`. Keys are chosen by Cutout, never from file names. Unused uploads are deleted after they expire.',
    responses: {
      201: 'The upload with a PUT URL per file; Location names it',
      400: 'invalid_request, empty_file', ...AUTH,
      413: 'too_many_items, file_too_large, payload_too_large', 415: 'unsupported_media_type (a content_type Cutout does not take)',
    },
  },
  'GET /v1/uploads/:id': {
    summary: 'An upload: each declared file, whether it is in S3, and fresh PUT URLs for the missing ones while it is open', tags: ['uploads'], params: ['id'],
    responses: { 200: '{object: "upload", id, status (open | used | expired), batch_id, expires_at, files: [{name, content_type, bytes, uploaded, put_url?, headers?}]}', ...AUTH, ...NOT_FOUND },
  },
  'GET /v1/batches/:id': {
    summary: 'Status of a batch: counts, upstream calls, credits saved, ETA', tags: ['batches'], params: ['id'],
    responses: { 200: 'The batch', ...AUTH, ...NOT_FOUND },
  },
  'GET /v1/batches/:id/results': {
    summary: 'Manifest of every item (client_ref, job_id, status, result_url, error_code, error_message, review, quality_flags, renditions), streamed', tags: ['batches'], params: ['id'],
    description: 'JSON lines carry `quality_flags` (an array) and `renditions` (as the job shows them); CSV has `quality_flags` (space-separated) and one `rendition_<name>_url` column per rendition of the batch.',
    query: { format: 'jsonl (default) or csv; Accept: text/csv also selects CSV' },
    responses: { 200: 'JSON lines or CSV, one row per item in submission order; result URLs are fresh presigned URLs', 400: 'invalid_request', ...AUTH, ...NOT_FOUND },
  },
  'GET /v1/batches/:id/jobs': {
    summary: "A batch's jobs in submission order, or those that ended with one status (in the order they ended), or those flagged", tags: ['batches'], params: ['id'],
    query: {
      status: 'queued | processing | succeeded | failed | canceled', review: 'rejected: items a reviewer flagged',
      quality: 'flagged: items whose cutout has quality flags, in the order they ended', limit: '1–100, default 20', cursor: 'next_cursor of the previous page',
    },
    responses: { 200: 'A page of jobs', 400: 'invalid_request, invalid_cursor', ...AUTH, ...NOT_FOUND },
  },
  'DELETE /v1/batches/:id': {
    summary: 'Cancel every item not yet started; started ones finish', tags: ['batches'], params: ['id'],
    responses: { 200: 'The batch, status canceled (completed if it had ended)', ...AUTH, ...NOT_FOUND },
  },
  'POST /v1/batches/:id/rerun': {
    summary: "A new batch of this batch's flagged or failed items", tags: ['batches'], params: ['id'], body: 'json',
    description: 'JSON `{items: "rejected" | "quality_flagged" | "failed", options?, renditions?, webhook_url?, item_events?}`; options and renditions default to the items\'. Items with a stored original run on a copy of it; URL items that failed before they were fetched are fetched again. The new batch has `rerun_of`; items that can no longer be rerun are listed in `rejected`.',
    headers: { 'idempotency-key': 'Same key + same request within 24 h returns the first answer' },
    responses: {
      202: 'The new batch; Location names it', 400: 'invalid_request, unknown_field, invalid_idempotency_key', ...AUTH, ...NOT_FOUND,
      409: 'idempotency_key_reused, idempotency_request_in_progress', 422: 'nothing_to_rerun, invalid_options, invalid_renditions, invalid_webhook_url, invalid_item_events', 503: 'service_unavailable',
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
    description: 'Optional JSON `{options?, renditions?, webhook_url?, metadata?}`; each defaults to the original job\'s. The new job has `rerun_of`. Same options as an earlier result not flagged by a reviewer reuse it (credits_saved), whatever the renditions; a reviewer-flagged result is never reused.',
    responses: { 202: 'The new job; Location names it', 400: 'invalid_request', ...AUTH, ...NOT_FOUND, 409: 'job_not_finished, original_missing', 422: 'invalid_options, invalid_renditions, invalid_webhook_url, invalid_metadata', 503: 'service_unavailable' },
  },
  'GET /v1/jobs/:id/webhook-attempts': {
    summary: "A job's webhook delivery attempts, newest first (the last 50)", tags: ['webhooks'], params: ['id'],
    responses: { 200: '{data: [{attempted_at, event_type, webhook_id, status_code, duration_ms, error}], next_cursor: null}', ...AUTH, ...NOT_FOUND },
  },
  'POST /v1/jobs/:id/webhook/redeliver': {
    summary: "Send a finished job's event again, same webhook-id", tags: ['webhooks'], params: ['id'],
    description: 'Enables the URL again if it answered 410, and lets an open circuit probe now. While a delivery of the event is pending, nothing more is queued: that delivery is tried now if it was waiting, and the answer is 202 with the job as it is. Counts against WEBHOOK_REDELIVERIES_PER_MINUTE per tenant.',
    responses: { 202: 'The job, its webhook pending', ...AUTH, 429: 'rate_limited (per key, or WEBHOOK_REDELIVERIES_PER_MINUTE per tenant)', ...NOT_FOUND, 409: 'job_not_finished, no_webhook_url, no_webhook_event' },
  },
  'POST /v1/batches/:id/webhook/redeliver': {
    summary: "Send a completed batch's batch.completed again, same webhook-id", tags: ['webhooks'], params: ['id'],
    description: 'As for a job: one pending delivery per event at most. Counts against WEBHOOK_REDELIVERIES_PER_MINUTE per tenant.',
    responses: { 202: 'The delivery log entry of the event (object: webhook_delivery), pending', ...AUTH, 429: 'rate_limited (per key, or WEBHOOK_REDELIVERIES_PER_MINUTE per tenant)', ...NOT_FOUND, 409: 'batch_not_finished, no_webhook_url' },
  },
  'GET /v1/webhook-deliveries': {
    summary: "The tenant's delivery log across jobs and batches, one entry per event (webhook-id), newest first", tags: ['webhooks'],
    query: {
      status: 'pending | endpoint_failing | delivered | failed', since: 'ISO 8601 time: only events created at or after it',
      limit: '1–100, default 20', cursor: 'next_cursor of the previous page',
    },
    responses: {
      200: '{data: [{object: "webhook_delivery", webhook_id, event_type, job_id, batch_id, url, state, attempts, last_status_code, last_error, last_attempt_at, next_attempt_at, delivered_at, created_at}], next_cursor}',
      400: 'invalid_request (status, since, limit), invalid_cursor', ...AUTH,
    },
  },
  'POST /v1/webhook-deliveries/recover': {
    summary: 'Queue every failed delivery of events created since a time again, once each, same webhook-ids', tags: ['webhooks'], body: 'json',
    description: 'JSON `{since: "2026-11-26T15:00:00Z"}`. Up to 10,000 per call (`has_more` asks for another). Deliveries to a URL disabled by a 410 are counted in `endpoint_disabled`, not sent: enable it first. Endpoints with an open circuit probe now. Counts against WEBHOOK_REDELIVERIES_PER_MINUTE per tenant.',
    responses: { 202: '{object: "webhook_recovery", since, queued, endpoint_disabled, has_more}', 400: 'invalid_request (since missing or not an ISO 8601 time)', ...AUTH, 429: 'rate_limited (per key, or WEBHOOK_REDELIVERIES_PER_MINUTE per tenant)' },
  },
  'GET /v1/webhook-endpoints': {
    summary: 'The URLs the tenant\'s webhooks went to recently or that are disabled, most recent first, with their state', tags: ['webhooks'],
    query: { limit: '1–100, default 20', cursor: 'next_cursor of the previous page' },
    responses: {
      200: '{data: [{object: "webhook_endpoint", url, state (enabled | failing | disabled), disabled_at, consecutive_failures, failing_since, next_probe_at, in_flight, waiting, last_attempt_at}], next_cursor}',
      400: 'invalid_request, invalid_cursor', ...AUTH,
    },
  },
  'POST /v1/webhook-endpoints/enable': {
    summary: 'Enable a URL that answered 410 (or let its open circuit probe now)', tags: ['webhooks'], body: 'json',
    description: 'JSON `{url}`, the webhook URL as submitted. Failed deliveries to it are not sent again by this: recover them afterwards.',
    responses: { 200: 'The endpoint (object: webhook_endpoint)', 400: 'invalid_request (no url)', ...AUTH, 404: 'not_found (a URL this tenant never used)', 422: 'invalid_webhook_url' },
  },
  'GET /v1/account': { summary: 'Tenant, scopes, limits, usage today and webhook signing secret', tags: ['account'], responses: { 200: 'The account', ...AUTH } },
  'GET /healthz': { summary: 'Liveness', tags: ['operations'], responses: { 200: 'The process is alive' } },
  'GET /readyz': { summary: 'Readiness: Redis (noeviction), S3, ByByBG key state, current upstream rate', tags: ['operations'], responses: { 200: 'Ready or degraded', 503: 'Redis or S3 unreachable' } },
};

export type { Doc };
