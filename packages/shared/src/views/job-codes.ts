/**
 * The closed sets of values jobs and batches carry, as constants: the stores, the worker,
 * the API and the OpenAPI document all take them from here.
 */
export const JOB_STATUSES = ['queued', 'processing', 'succeeded', 'failed', 'canceled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
/** The statuses a job never leaves. */
const TERMINAL_STATUSES = ['succeeded', 'failed', 'canceled'] as const satisfies readonly JobStatus[];
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];
export const isTerminal = (status: JobStatus): status is TerminalStatus =>
  (TERMINAL_STATUSES as readonly JobStatus[]).includes(status);

/** Why a failed job failed (`error.code`). */
export const JOB_ERROR_CODES = [
  // ByByBG and its answers
  'upstream_unavailable',
  'upstream_forbidden',
  'upstream_rejected',
  'upstream_bad_response',
  'upstream_rate_limited',
  'upstream_unauthorized',
  'upstream_out_of_credit',
  // the job's own input: options no longer allowed, an original gone, or a batch URL item that could not be used
  'invalid_options',
  'original_missing',
  'invalid_image_url',
  'image_url_unreachable',
  'unsupported_media_type',
  'invalid_image',
  'image_too_large',
  'image_truncated',
  'file_too_large',
  'empty_file',
  'upload_missing',
  // the worker
  'worker_crashed',
  'processing_error',
] as const;
export type JobErrorCode = (typeof JOB_ERROR_CODES)[number];

/** Why a queued job waits (`waiting_reason`); null when it just waits its turn. */
export const WAITING_REASONS = [
  'upstream_rate_limited',
  'upstream_unauthorized',
  'upstream_out_of_credit',
  'budget_exhausted',
  'duplicate_in_progress',
  'retry_scheduled',
] as const;
export type WaitingReason = (typeof WAITING_REASONS)[number];

/** `endpoint_failing`: not sent while the endpoint's circuit is open; it waits for the next probe. */
export const WEBHOOK_STATES = ['pending', 'endpoint_failing', 'delivered', 'failed'] as const;

/** `creating` while its items are written (none runs yet); `failed_to_create` when that stopped half-way. */
export const BATCH_STATUSES = ['creating', 'processing', 'completed', 'canceled', 'failed_to_create'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
