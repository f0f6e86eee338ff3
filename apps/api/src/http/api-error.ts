import { statusOf, type ErrorCode } from '../contract/error-codes.ts';

/** An error a client can act on: a stable snake_case code (its status comes from the catalogue) and a message. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  /** More of the envelope's `error`, e.g. `rejected` rows with no_valid_items. */
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    headers: Record<string, string> = {},
    details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.statusCode = statusOf(code);
    this.headers = headers;
    this.details = details;
  }
}
