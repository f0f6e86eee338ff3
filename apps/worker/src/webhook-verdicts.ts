import { UnsafeUrlError } from '@cutout/shared/security';
import type { EndpointHealth } from '@cutout/shared/stores';
import type { WebhookResponse } from './webhook-sender.ts';

/**
 * What one delivery attempt means for the event: `delivered`, `retry` on the schedule, or
 * `give_up` now (no later attempt can succeed). `error` is what the client sees in the
 * job's webhook state and attempt log, so it never quotes internal addresses.
 */
type Verdict = 'delivered' | 'retry' | 'give_up';

export interface AttemptOutcome {
  verdict: Verdict;
  statusCode: number | null;
  error: string | null;
  /** What the attempt says about the endpoint, for its circuit breaker (webhook-gate.ts). */
  health: EndpointHealth;
  /** The receiver's Retry-After, honoured by the backoff. */
  retryAfterMs?: number;
}

/**
 * A 5xx means the receiver is failing; any other answer, even a 4xx or a 429, shows an
 * endpoint that answers quickly and holds no delivery slot for long, so it does not
 * count towards opening the circuit.
 */
const healthOfStatus = (statusCode: number): EndpointHealth => (statusCode >= 500 ? 'down' : 'up');

/** Answers that end the delivery for good, with the reason shown to the client. */
const FINAL_STATUSES: Readonly<Record<number, string>> = {
  410: 'endpoint gone (410)', // the receiver asks us to stop sending
};

/** Answers whose Retry-After is a request to slow down, not an incidental header. */
const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([
  429, // the receiver rate-limits us
  503, // the receiver is down for a while
]);

export function outcomeOfResponse({ statusCode, retryAfterMs }: WebhookResponse): AttemptOutcome {
  const health = healthOfStatus(statusCode);
  if (statusCode >= 200 && statusCode < 300) return { verdict: 'delivered', statusCode, error: null, health };
  const final = FINAL_STATUSES[statusCode];
  if (final) return { verdict: 'give_up', statusCode, error: final, health };
  // A 3xx did not deliver the event: redirects are not followed, as the target was never checked.
  const error =
    statusCode >= 300 && statusCode < 400
      ? `receiver answered ${statusCode}; redirects are not followed`
      : `receiver answered ${statusCode}`;
  return {
    verdict: 'retry',
    statusCode,
    error,
    health,
    ...(RETRY_AFTER_STATUSES.has(statusCode) && retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

/**
 * No answer: refused by the SSRF guard (final; nothing learnt about the endpoint, which was
 * never contacted), or timed out, failed to connect or to resolve (retried; the endpoint is down).
 */
export function outcomeOfError(error: unknown, timeoutMs: number): AttemptOutcome {
  if (error instanceof UnsafeUrlError && error.reason === 'private_address') {
    // Checked after DNS, at connect time: retrying would meet the same guard.
    return {
      verdict: 'give_up',
      statusCode: null,
      error:
        'address not allowed: the webhook host is or resolves to a private, loopback, link-local or metadata address',
      health: 'unknown',
    };
  }
  // An empty DNS answer may be a passing glitch of the receiver's DNS.
  if (error instanceof UnsafeUrlError)
    return { verdict: 'retry', statusCode: null, error: 'the webhook host resolved to no address', health: 'down' };
  const name = (error as { name?: string }).name;
  if (name === 'TimeoutError' || name === 'AbortError')
    return { verdict: 'retry', statusCode: null, error: `no answer within ${timeoutMs} ms`, health: 'down' };
  const code = (error as { code?: string }).code;
  return {
    verdict: 'retry',
    statusCode: null,
    error: code ? `connection failed (${code})` : 'connection failed',
    health: 'down',
  };
}
