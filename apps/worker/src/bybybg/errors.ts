/**
 * What a ByByBG outcome means for the job. Every decision is made from the HTTP status
 * or the error's `code`, never from message text, so a reworded message upstream or in
 * undici cannot turn a retryable failure into a lost job (or the reverse).
 */

export type UpstreamErrorCode =
  | 'upstream_rate_limited'
  | 'upstream_unavailable'
  | 'upstream_unauthorized'
  | 'upstream_out_of_credit'
  | 'upstream_forbidden'
  | 'upstream_rejected'
  | 'upstream_bad_response';

/**
 * - rate_limited: wait and try again without using an attempt (the account, not the job).
 * - transient: retry with backoff, using an attempt.
 * - unauthorized: the API key is at fault, not the job: stop the queue until a key works.
 * - out_of_credit: the account has no credit left: stop the queue until a call succeeds again.
 * - permanent: retrying the same request gives the same answer: fail the job.
 */
export type UpstreamErrorKind = 'rate_limited' | 'transient' | 'unauthorized' | 'out_of_credit' | 'permanent';

export interface Classification {
  kind: UpstreamErrorKind;
  code: UpstreamErrorCode;
}

export interface UpstreamErrorInit extends Classification {
  /** Safe to show a client: never holds an API key (the client scrubs upstream text). */
  message: string;
  status?: number;
  retryAfterMs?: number;
  cause?: unknown;
}

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly code: UpstreamErrorCode;
  readonly kind: UpstreamErrorKind;
  /** Only permanent outcomes are the job's fault; everything else is worth another try. */
  readonly retryable: boolean;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(init: UpstreamErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.kind = init.kind;
    this.retryable = init.kind !== 'permanent';
    this.status = init.status;
    this.retryAfterMs = init.retryAfterMs;
  }
}

const RATE_LIMITED: Classification = { kind: 'rate_limited', code: 'upstream_rate_limited' };
const TRANSIENT: Classification = { kind: 'transient', code: 'upstream_unavailable' };
const UNAUTHORIZED: Classification = { kind: 'unauthorized', code: 'upstream_unauthorized' };
const OUT_OF_CREDIT: Classification = { kind: 'out_of_credit', code: 'upstream_out_of_credit' };
const FORBIDDEN: Classification = { kind: 'permanent', code: 'upstream_forbidden' };
const REJECTED: Classification = { kind: 'permanent', code: 'upstream_rejected' };
const BAD_RESPONSE: Classification = { kind: 'permanent', code: 'upstream_bad_response' };

/**
 * Statuses with a meaning of their own; the ranges below cover the rest.
 *
 * Only 402 means "out of credit". ByByBG documents 403 and 429 but no body or header that
 * would tell an exhausted plan apart from a denied request or a rate limit, and its response
 * format is undocumented: reading their message text could turn one image's 403 into a hold
 * of every tenant's work, so they keep their documented meaning.
 */
const STATUS_TABLE: Readonly<Record<number, Classification>> = {
  401: UNAUTHORIZED, // missing or invalid key: rotate to the next key; the job is not at fault
  402: OUT_OF_CREDIT, // payment required: the account's credits are spent; every call would get the same until topped up
  403: FORBIDDEN, // the key works but may not make this request (plan, scope): same answer next time
  408: TRANSIENT, // upstream gave up waiting for our upload: a fresh attempt can succeed
  425: TRANSIENT, // "too early": the server asks for a replay later
  429: RATE_LIMITED, // account rate limit: wait (Retry-After) without using an attempt
  500: TRANSIENT, // upstream bug or crash, often momentary
  502: TRANSIENT, // upstream's gateway could not reach its backend
  503: TRANSIENT, // overloaded or deploying
  504: TRANSIENT, // upstream's gateway timed out
};

/** null for 2xx: not an error. */
export function classifyStatus(status: number): Classification | null {
  if (status >= 200 && status < 300) return null;
  const listed = STATUS_TABLE[status];
  if (listed) return listed;
  if (status >= 500) return TRANSIENT; // any other 5xx is the server's trouble, not the request's
  if (status >= 400) return REJECTED; // any other 4xx: the request itself is refused
  return BAD_RESPONSE; // 1xx/3xx: redirects are not followed, so this is a response we cannot use
}

/** `timeout` rows get a "did not answer within" message; the kind is transient either way. */
export type NetworkFailure = 'timeout' | 'connection';

/** Error `code`s of failures to reach or hear from ByByBG. All are transient. */
const NETWORK_ERROR_TABLE: Readonly<Record<string, NetworkFailure>> = {
  ECONNREFUSED: 'connection', // nothing listens: upstream restarting
  ECONNRESET: 'connection', // connection dropped mid-request (load balancer, restart)
  ECONNABORTED: 'connection', // local side aborted the connection
  EPIPE: 'connection', // upstream closed while we were still uploading
  EHOSTUNREACH: 'connection', // routing trouble between us and upstream
  ENETUNREACH: 'connection', // our network is down
  ENOTFOUND: 'connection', // DNS answered "no such host": usually a DNS hiccup for a known host
  EAI_AGAIN: 'connection', // DNS lookup timed out
  ETIMEDOUT: 'timeout', // OS-level connect/read timeout
  UND_ERR_CONNECT_TIMEOUT: 'timeout', // undici could not connect in time
  UND_ERR_HEADERS_TIMEOUT: 'timeout', // connected but no response headers in time
  UND_ERR_BODY_TIMEOUT: 'timeout', // response body stalled
  UND_ERR_SOCKET: 'connection', // socket error while the request was in flight
  UND_ERR_CLOSED: 'connection', // the client closed under us (pool shutdown, keep-alive race)
  UND_ERR_ABORTED: 'connection', // request aborted by undici
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'connection', // premature close: body shorter than announced
  ERR_STREAM_PREMATURE_CLOSE: 'connection', // Node stream closed before the body ended
  UND_ERR_SOCKET_CLOSED: 'connection', // older undici spelling of a closed socket
};

/**
 * Network error `code`s raised before a single byte of the request could leave: the call
 * never reached ByByBG, so it is given back to the tenant's budget. Anything later (a reset,
 * a timeout once connected) may have been processed and stays counted.
 */
const NEVER_SENT_TABLE: ReadonlySet<string> = new Set([
  'ECONNREFUSED', // nothing listens on ByByBG's port
  'ENOTFOUND', // the name did not resolve
  'EAI_AGAIN', // DNS lookup timed out
  'EHOSTUNREACH', // no route to ByByBG
  'ENETUNREACH', // our network is down
  'UND_ERR_CONNECT_TIMEOUT', // the TCP/TLS connection was never established
]);

/** Whether a failed request certainly never reached ByByBG (checked on the error and its causes). */
export function neverSent(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NEVER_SENT_TABLE.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Looks at `code` on the error and its causes (fetch-style wrappers hide it one level down). */
export function classifyNetworkError(error: unknown): NetworkFailure | null {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && Object.hasOwn(NETWORK_ERROR_TABLE, code)) return NETWORK_ERROR_TABLE[code] ?? null;
    // AbortSignal.timeout() rejects with a DOMException of this class name.
    if ((current as { name?: unknown }).name === 'TimeoutError') return 'timeout';
    current = (current as { cause?: unknown }).cause;
  }
  return null;
}

export type HeaderBag = Record<string, string | string[] | undefined>;

/** Header lookup that tolerates any casing in the bag (undici lowercases; tests may not). */
function headerValue(headers: HeaderBag, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== wanted || value === undefined) continue;
    return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.round(Number(raw) * 1000);
  // Only date-shaped values: Date.parse accepts bare numbers like "-5" or "12" otherwise.
  if (!/[a-z]/i.test(raw)) return undefined;
  const at = Date.parse(raw);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

export interface RateLimitInfo {
  limit?: number;
  remaining?: number;
  resetMs?: number;
}

// X-RateLimit-Reset is documented as seconds until reset, but some gateways send an epoch
// time; anything past ~10 years of seconds can only be an epoch.
const EPOCH_THRESHOLD_S = 10 * 365 * 24 * 3600;

function leadingNumber(value: string | undefined): number | undefined {
  // Tolerates the draft-standard "100, 100;w=60" shape by reading the first number only.
  const match = value?.trim().match(/^\d+(\.\d+)?/);
  return match ? Number(match[0]) : undefined;
}

export function parseRateLimitHeaders(headers: HeaderBag, now: number = Date.now()): RateLimitInfo {
  const info: RateLimitInfo = {};
  const limit = leadingNumber(headerValue(headers, 'x-ratelimit-limit'));
  const remaining = leadingNumber(headerValue(headers, 'x-ratelimit-remaining'));
  const reset = leadingNumber(headerValue(headers, 'x-ratelimit-reset'));
  if (limit !== undefined) info.limit = limit;
  if (remaining !== undefined) info.remaining = remaining;
  if (reset !== undefined) {
    info.resetMs = reset > EPOCH_THRESHOLD_S ? Math.max(0, reset * 1000 - now) : Math.round(reset * 1000);
  }
  return info;
}
