import { z } from 'zod';
import type { Scope } from '@cutout/shared/stores';
import { ERROR_CODES, type ErrorCode } from './error-codes.ts';

/** Response headers an operation may document, defined once in the document's components. */
export type ResponseHeader =
  | 'location'
  | 'etag'
  | 'cache-control'
  | 'preference-applied'
  | 'idempotent-replayed'
  | 'content-disposition'
  | 'retry-after'
  | 'x-ratelimit-limit'
  | 'x-ratelimit-remaining'
  | 'x-ratelimit-reset';

export interface SuccessResponse {
  description: string;
  /** The JSON body; validated and serialized from this schema. */
  json?: z.ZodType;
  /** Bodies of other media types (streams), documented only: `{ 'text/csv': schema }`. */
  content?: Record<string, z.ZodType>;
  headers?: readonly ResponseHeader[];
}

/** A request body the handler reads itself (multipart, or JSON and multipart): documented, validated in the handler. */
interface DocumentedBody {
  required: boolean;
  content: Record<string, z.ZodType>;
  description?: string;
}

/**
 * One operation of the API, in one place: what the route validates (params, query,
 * headers, JSON body), what it answers (each status, media type and schema), the error
 * codes it may give, and what the OpenAPI document says of it.
 */
export interface OperationSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: readonly string[];
  /** The scope of the API key it needs; absent for public operations (health, metrics). */
  scope?: Scope;
  params?: z.ZodObject;
  querystring?: z.ZodObject;
  /** Request headers it reads (names in lower case); validated with the request. */
  headers?: z.ZodObject;
  /** A JSON body fastify validates before the handler runs. */
  body?: z.ZodType;
  /** A body the handler reads itself, for the document. */
  requestBody?: DocumentedBody;
  responses: Record<number, SuccessResponse>;
  /** Error codes beyond the ones every operation of its kind may answer. */
  errors: readonly ErrorCode[];
}

/** Every authenticated operation may answer these (who is calling, their allowance, our backends). */
const AUTHENTICATED_ERRORS: readonly ErrorCode[] = [
  'missing_api_key',
  'invalid_api_key',
  'revoked_api_key',
  'review_link_not_api_key',
  'insufficient_scope',
  'rate_limited',
  'service_unavailable',
  'internal_error',
];
const PUBLIC_ERRORS: readonly ErrorCode[] = ['service_unavailable', 'internal_error'];

/** The codes an operation declares, by status. */
export function errorsByStatus(spec: Pick<OperationSpec, 'scope' | 'errors'>): Map<number, ErrorCode[]> {
  const codes = new Set<ErrorCode>([...(spec.scope ? AUTHENTICATED_ERRORS : PUBLIC_ERRORS), ...spec.errors]);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of [...codes].sort()) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return new Map([...byStatus].sort(([a], [b]) => a - b));
}

export const rejectedRowSchema = z
  .object({
    row: z.int().describe("The item's position, 1-based (for a CSV manifest, its line; the header is 1)"),
    reason: z.string(),
  })
  .meta({ id: 'RejectedRow' });

/** The error envelope, its `code` limited to what the status may carry for the operation. */
export function errorEnvelope(codes: readonly ErrorCode[]) {
  return z.object({
    error: z.object({
      code: z.enum(codes as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      request_id: z.string().meta({ example: 'req_4hS9kQ2m7Xo1Lr8Tz3Vb' }),
      rejected: z.array(rejectedRowSchema).optional().describe('With no_valid_items: every row and why it was refused'),
    }),
  });
}

/** A page of a list: `{ data, next_cursor }`. */
export const listOf = <T extends z.ZodType>(item: T) =>
  z.object({
    data: z.array(item),
    next_cursor: z.string().nullable().describe('Pass as ?cursor= for the next page; null on the last page'),
  });

export const idParams = (what: string, pattern: RegExp, example: string) =>
  z.object({
    id: z
      .string()
      .regex(pattern)
      .meta({ description: `The ${what} id`, example }),
  });
