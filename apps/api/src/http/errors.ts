import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ImageInputError } from '@cutout/shared/images';
import { isErrorCode, type ErrorCode } from '../contract/error-codes.ts';
import { ApiError } from './api-error.ts';

export { ApiError } from './api-error.ts';
import { problemsOfValidation, problemToApiError, type ValidationPart } from '../contract/validation.ts';
import { checkErrorCode, type ContractViolation } from '../contract/register.ts';

export const badRequest = (code: ErrorCode, message: string) => new ApiError(code, message);
export const notFound = (what: string) => new ApiError('not_found', `${what} not found`);
export const unavailable = (message = 'A backing service is unavailable; retry shortly') =>
  new ApiError('service_unavailable', message, { 'retry-after': '5' });

/** Fastify and plugin error codes that are the client's doing, mapped to our envelope. */
const FRAMEWORK_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type', // body type we do not parse
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large', // JSON body over bodyLimit
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request', // content-type json, no body
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request', // length header lies
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'unsupported_media_type', // not multipart
  FST_FILES_LIMIT: 'too_many_files', // more than one file part
  FST_PARTS_LIMIT: 'too_many_parts', // more parts than allowed
  FST_FIELDS_LIMIT: 'too_many_fields', // more fields than allowed
  FST_PROTO_VIOLATION: 'invalid_request', // __proto__ as a field name
  FST_ERR_MAX_PARAM_LENGTH: 'not_found', // an id longer than any we issue
  FST_ERR_BAD_URL: 'invalid_request', // a path that is not valid percent-encoding
};

/** Errors that mean Redis or S3 is not reachable: the client should retry, we did nothing. */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

function isUnavailable(error: Error & { code?: string; $metadata?: unknown }): boolean {
  if (error.code && UNAVAILABLE_CODES.has(error.code)) return true;
  // ioredis: offline queue disabled / retries exhausted while Redis is down.
  return (
    error.name === 'MaxRetriesPerRequestError' || /Stream isn't writeable|Connection is closed/.test(error.message)
  );
}

export function toApiError(error: FastifyError): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ImageInputError && isErrorCode(error.code)) return new ApiError(error.code, error.message);
  const known = error.code ? FRAMEWORK_ERRORS[error.code] : undefined;
  if (known) return new ApiError(known, error.message);
  if (error.validation) {
    const part = (error.validationContext ?? 'body') as ValidationPart;
    return problemToApiError(
      part,
      problemsOfValidation(error.validation as Parameters<typeof problemsOfValidation>[0]),
    );
  }
  if (isUnavailable(error)) return unavailable();
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new ApiError('invalid_request', error.message);
  }
  return new ApiError('internal_error', 'Something went wrong on our side; the request id identifies it in our logs');
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: ApiError) {
  return reply
    .status(error.statusCode)
    .headers(error.headers)
    .send({ error: { code: error.code, message: error.message, request_id: request.id, ...error.details } });
}

/** Errors in the envelope; an error code the operation does not document is reported (`report`). */
export function registerErrorHandling(app: FastifyInstance, report: (violation: ContractViolation) => void): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.statusCode >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: apiError.code, status: apiError.statusCode }, 'request rejected');
    checkErrorCode(request.routeOptions.config?.operation, apiError.statusCode, apiError.code, report);
    return sendError(request, reply, apiError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new ApiError('not_found', `No route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}
