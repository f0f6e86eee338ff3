/**
 * An image a client gave us that cannot be used: the API answers it with `statusCode` and
 * `code`; the worker fails a batch item with the same code (retrying when `retryable`).
 */
export class ImageInputError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** True when the same URL may work later (a timeout, a 5xx), false when it never will. */
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'ImageInputError';
  }
}
