import { UpstreamError } from './errors.ts';

/**
 * Last line of defence for the API keys: upstream text (an error message, the start of an
 * unreadable body) is quoted into messages, and an upstream that echoes the key would
 * otherwise hand it to a client or a log.
 */

const REDACTED = '[REDACTED]';

function redactText(text: string, secrets: readonly string[]): string {
  let out = text;
  // Very short strings would redact ordinary words; real keys are long.
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  return out;
}

export function redactKeys(error: unknown, secrets: readonly string[]): unknown {
  if (!(error instanceof Error)) return error;
  const message = redactText(error.message, secrets);
  if (message === error.message) return error;
  if (error instanceof UpstreamError) {
    return new UpstreamError({
      kind: error.kind,
      code: error.code,
      message,
      ...(error.status === undefined ? {} : { status: error.status }),
      ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
      cause: error.cause,
    });
  }
  error.message = message;
  if (error.stack) error.stack = redactText(error.stack, secrets);
  return error;
}
