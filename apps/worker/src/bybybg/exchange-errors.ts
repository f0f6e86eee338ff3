import type { Dispatcher } from 'undici';
import { mimeType, readHead, upstreamMessage } from './body.ts';
import {
  UpstreamError,
  classifyNetworkError,
  classifyStatus,
  parseRateLimitHeaders,
  parseRetryAfter,
  type Classification,
  type UpstreamErrorCode,
} from './errors.ts';

/** Turning what an HTTP exchange with ByByBG produced into an UpstreamError. */

export interface Deadline {
  timeoutMs: number;
  timeout: AbortSignal;
  caller: AbortSignal | undefined;
  signal: AbortSignal;
}

/** A total budget for connect, upload, headers and body; the caller can still cancel earlier. */
export function makeDeadline(timeoutMs: number, caller: AbortSignal | undefined): Deadline {
  const timeout = AbortSignal.timeout(timeoutMs);
  return { timeoutMs, timeout, caller, signal: caller ? AbortSignal.any([timeout, caller]) : timeout };
}

/**
 * What a request threw, as an UpstreamError, or unchanged when it is not upstream's doing:
 * a failing original (storage) or a bug must not be retried as if ByByBG were down.
 */
export function toUpstreamError(error: unknown, limits: Deadline, subject: string, sourceError?: unknown): unknown {
  if (error instanceof UpstreamError) return error;
  const transient = (message: string) =>
    new UpstreamError({ kind: 'transient', code: 'upstream_unavailable', message, cause: error });
  // Our own signals are checked first: undici rejects with their reason, whatever it is.
  if (limits.timeout.aborted) return transient(`${subject} did not answer within ${limits.timeoutMs} ms`);
  if (limits.caller?.aborted) return transient(`${subject} request was cancelled`);
  if (sourceError !== undefined) return sourceError;
  const failure = classifyNetworkError(error);
  if (failure === 'timeout') return transient(`${subject} did not answer within ${limits.timeoutMs} ms`);
  if (failure === 'connection') return transient(`${subject} connection failed (${errorCode(error)})`);
  return error;
}

/** A non-2xx answer from /v1/remove-bg. */
export async function errorFromResponse(response: Dispatcher.ResponseData, now: number): Promise<UpstreamError> {
  const { statusCode: status, headers } = response;
  const classification: Classification = classifyStatus(status) ?? { kind: 'permanent', code: 'upstream_bad_response' };
  const retryAfterMs =
    parseRetryAfter(headers['retry-after'], now) ??
    (status === 429 ? parseRateLimitHeaders(headers, now).resetMs : undefined);
  // The status decides; a body that fails to arrive only costs the detail.
  const head = await readHead(response.body).catch(() => Buffer.alloc(0));
  const detail = upstreamMessage(head, mimeType(headers['content-type']));
  const messages: Record<UpstreamErrorCode, string> = {
    upstream_rate_limited: `ByByBG rate limit exceeded${retryAfterMs === undefined ? '' : ` (retry after ${retryAfterMs} ms)`}`,
    // Upstream's 5xx text may describe its internals: keep it out of what clients see.
    upstream_unavailable: `ByByBG is unavailable (HTTP ${status})`,
    upstream_unauthorized: 'ByByBG rejected the API key',
    upstream_out_of_credit: 'ByByBG says the account is out of credit (HTTP 402)',
    upstream_forbidden: detail ?? 'ByByBG denied access to this request',
    upstream_rejected: detail ?? `ByByBG rejected the request (HTTP ${status})`,
    upstream_bad_response: `ByByBG answered HTTP ${status}, which Cutout cannot use`,
  };
  return new UpstreamError({ ...classification, message: messages[classification.code], status, retryAfterMs });
}

export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return (error as { name?: unknown } | null)?.name === 'TimeoutError' ? 'TimeoutError' : 'unknown';
}
