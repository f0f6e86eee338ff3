import type { JobErrorCode } from '../views/job-codes.ts';

/**
 * An image a client gave us that cannot be used: the API answers it with `statusCode` and
 * `code`; the worker fails a batch item with the same code (retrying when `retryable`).
 */
export type ImageErrorCode = Extract<
  JobErrorCode,
  | 'image_url_unreachable'
  | 'invalid_image_url'
  | 'file_too_large'
  | 'empty_file'
  | 'unsupported_media_type'
  | 'invalid_image'
  | 'image_too_large'
  | 'image_truncated'
  | 'upload_missing'
>;

export class ImageInputError extends Error {
  readonly statusCode: number;
  readonly code: ImageErrorCode;
  /** True when the same URL may work later (a timeout, a 5xx), false when it never will. */
  readonly retryable: boolean;
  constructor(statusCode: number, code: ImageErrorCode, message: string, retryable = false) {
    super(message);
    this.name = 'ImageInputError';
    this.statusCode = statusCode;
    this.code = code;
    this.retryable = retryable;
  }
}
