/**
 * Every error code the API answers, with its status and what it means. Thrown errors take
 * their status from here (`new ApiError(code, message)`), and each operation of the OpenAPI
 * document lists, per status, the codes it declares it may answer.
 */
export const ERROR_CODES = {
  // 400: the request cannot be read as sent
  invalid_request: { status: 400, description: 'A parameter, header or JSON body does not fit the operation' },
  invalid_cursor: { status: 400, description: 'The cursor is not one this API returned' },
  invalid_idempotency_key: { status: 400, description: 'Idempotency-Key is not 1 to 255 printable ASCII characters' },
  invalid_multipart: { status: 400, description: 'The multipart body is malformed or ended early' },
  unknown_field: { status: 400, description: 'A field the operation does not take' },
  duplicate_field: { status: 400, description: 'A field was sent twice' },
  missing_file: { status: 400, description: 'Neither a file part nor an image_url' },
  empty_file: { status: 400, description: 'The file part is empty' },
  ambiguous_image: { status: 400, description: 'Both a file and an image_url' },
  too_many_files: { status: 400, description: 'More than one file part' },
  too_many_parts: { status: 400, description: 'More multipart parts than the operation takes' },
  too_many_fields: { status: 400, description: 'More multipart fields than the operation takes' },
  missing_items: { status: 400, description: 'A batch without items, manifest or files' },
  ambiguous_items: { status: 400, description: 'A manifest and files in one batch' },
  api_key_in_url: { status: 400, description: 'An API key in a review page URL' },
  // 401, 403: who is calling
  missing_api_key: { status: 401, description: 'No X-API-KEY header' },
  invalid_api_key: { status: 401, description: 'The key is unknown, or malformed (bad checksum)' },
  revoked_api_key: { status: 401, description: 'The key was revoked' },
  review_link_not_api_key: { status: 401, description: 'A review link was sent as an API key' },
  review_link_invalid: { status: 401, description: 'The review link is not valid' },
  review_link_revoked: { status: 401, description: 'The review link was revoked' },
  insufficient_scope: {
    status: 403,
    description: 'The key lacks the scope this operation needs (e.g. a read-only key writing)',
  },
  // 404, 409, 410: the resource and its state
  not_found: {
    status: 404,
    description: "No such resource for this tenant (another tenant's ids are not found either)",
  },
  upload_not_found: { status: 404, description: 'The upload_id of a batch names no upload of this tenant' },
  idempotency_key_reused: {
    status: 409,
    description: 'The Idempotency-Key came with a different request in the last 24 hours',
  },
  idempotency_request_in_progress: {
    status: 409,
    description: 'A request with this Idempotency-Key is still running; retry shortly (Retry-After)',
  },
  job_already_started: { status: 409, description: 'A worker has taken the job; it can no longer be canceled' },
  job_finished: { status: 409, description: 'The job has ended' },
  job_not_finished: { status: 409, description: 'The job has not ended yet' },
  result_not_ready: { status: 409, description: 'The job has no result (yet)' },
  rendition_failed: { status: 409, description: 'The rendition could not be made; the message says why' },
  no_webhook_url: { status: 409, description: 'The job was submitted without a webhook_url' },
  no_webhook_event: { status: 409, description: 'The job sends no webhook (canceled)' },
  batch_not_finished: {
    status: 409,
    description: 'The batch has not completed yet; its batch.completed event is sent when it does',
  },
  not_reviewable: { status: 409, description: 'Only a succeeded job has a cutout to judge' },
  original_missing: { status: 409, description: 'The original is no longer stored, or was never fetched' },
  upload_already_used: {
    status: 409,
    description: 'A batch was already made from this upload; an upload makes one batch',
  },
  review_link_expired: { status: 410, description: 'The review link has expired' },
  upload_expired: {
    status: 410,
    description: 'The upload has expired (UPLOAD_URL_TTL): its files are deleted; upload them again',
  },
  // 413, 415: what was sent
  file_too_large: { status: 413, description: 'An image over MAX_UPLOAD_BYTES, or a manifest over MAX_MANIFEST_BYTES' },
  field_too_large: { status: 413, description: 'A multipart field over 64 KiB' },
  payload_too_large: { status: 413, description: "A JSON body over the operation's limit" },
  too_many_items: { status: 413, description: 'More than MAX_BATCH_ITEMS items' },
  unsupported_media_type: {
    status: 415,
    description: 'Not a JPEG, PNG or WebP by its bytes, or a body type the operation does not take',
  },
  // 422: valid syntax, unusable values
  invalid_webhook_url: { status: 422, description: 'webhook_url is not a public http(s) URL without credentials' },
  invalid_metadata: { status: 422, description: 'metadata is not a JSON object of at most 4 KB' },
  invalid_options: {
    status: 422,
    description: 'options is not a JSON object of strings, or names an option not in BYBYBG_ALLOWED_OPTIONS',
  },
  invalid_renditions: {
    status: 422,
    description:
      'renditions is not a JSON array of at most 8 valid rendition specs; the message names the spec and the field',
  },
  invalid_dry_run: { status: 422, description: 'dry_run is not true or false' },
  invalid_item_events: { status: 422, description: 'item_events is not true or false' },
  invalid_image: { status: 422, description: 'The image header or structure is damaged' },
  image_too_large: { status: 422, description: 'Over MAX_IMAGE_PIXELS' },
  image_truncated: { status: 422, description: 'The file ends before the image does' },
  invalid_image_url: { status: 422, description: 'image_url is not a public http(s) URL' },
  image_url_unreachable: { status: 422, description: 'image_url could not be fetched' },
  invalid_manifest: { status: 422, description: 'The manifest is not usable CSV' },
  no_valid_items: { status: 422, description: 'No item of the batch is valid (error.rejected lists them)' },
  nothing_to_rerun: { status: 422, description: 'No item of the batch matches the rerun selection' },
  // 429, 5xx
  rate_limited: {
    status: 429,
    description: 'Over an allowance: per key, per review link, per address for failed authentication (Retry-After)',
  },
  internal_error: { status: 500, description: 'A failure on our side; the request id identifies it in our logs' },
  service_unavailable: { status: 503, description: 'Redis or S3 unreachable; nothing was stored, retry (Retry-After)' },
} as const satisfies Record<string, { status: number; description: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const statusOf = (code: ErrorCode): number => ERROR_CODES[code].status;

export const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERROR_CODES, code);
