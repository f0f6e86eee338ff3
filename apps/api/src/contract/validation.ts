import type { z } from 'zod';
import { ApiError } from '../http/api-error.ts';
import { isErrorCode, type ErrorCode } from './error-codes.ts';

/** What a schema says went wrong: zod's issues, or fastify's rendering of them. */
export interface Problem {
  /** zod's issue code (`invalid_type`, `unrecognized_keys`, `custom`, …). */
  keyword: string;
  path: readonly PropertyKey[];
  message: string;
  /** A custom issue may name the error code it stands for: `params: { code }`. */
  code?: string;
  /** `unrecognized_keys`: the names that are not part of the schema. */
  keys?: readonly string[];
}

export type ValidationPart = 'body' | 'querystring' | 'params' | 'headers' | 'fields';

/**
 * Each field's own error code, where it has one (a bad value of a field that exists);
 * anything else about a body or a query is `invalid_request`.
 */
const FIELD_CODES: Record<string, ErrorCode> = {
  metadata: 'invalid_metadata',
  options: 'invalid_options',
  webhook_url: 'invalid_webhook_url',
  item_events: 'invalid_item_events',
  dry_run: 'invalid_dry_run',
  image_url: 'missing_file',
  cursor: 'invalid_cursor',
  'idempotency-key': 'invalid_idempotency_key',
};

const describe = (problem: Problem): string => {
  const field = problem.path.map(String).join('.');
  return field && !problem.message.startsWith(field) ? `${field}: ${problem.message}` : problem.message;
};

/**
 * The API error for the first problem a schema found: Cutout's own codes and statuses
 * (the bad-input table), never fastify's defaults. A path id that does not fit is simply
 * not found; an unknown field is `unknown_field`; a field's bad value has the field's code.
 */
export function problemToApiError(part: ValidationPart, problems: readonly Problem[]): ApiError {
  const problem = problems[0];
  if (!problem) return new ApiError('invalid_request', 'The request does not fit the operation');
  if (part === 'params') return new ApiError('not_found', 'Not found');
  if (problem.keyword === 'unrecognized_keys') {
    const name = (problem.keys?.[0] ?? '').slice(0, 100);
    return new ApiError(
      part === 'querystring' ? 'invalid_request' : 'unknown_field',
      `Unknown ${part === 'querystring' ? 'parameter' : 'field'} "${name}"`,
    );
  }
  // A refusal that names its code also words its own message.
  if (problem.code && isErrorCode(problem.code)) return new ApiError(problem.code, problem.message);
  const field = String(problem.path[0] ?? '');
  if (problem.path.length === 0 && (part === 'body' || part === 'fields'))
    return new ApiError('invalid_request', `The body must be a JSON object: ${problem.message}`);
  return new ApiError(FIELD_CODES[field] ?? 'invalid_request', describe(problem));
}

/** zod's issues as problems. */
const problemsOf = (error: z.ZodError): Problem[] =>
  error.issues.map((issue) => ({
    keyword: issue.code,
    path: issue.path,
    message: issue.message,
    code: issue.code === 'custom' ? (issue.params as { code?: string } | undefined)?.code : undefined,
    keys: issue.code === 'unrecognized_keys' ? issue.keys : undefined,
  }));

/** fastify-type-provider-zod's validation entries (on a FST_ERR_VALIDATION error) as problems. */
export const problemsOfValidation = (
  validation: readonly { keyword: string; instancePath: string; message?: string; params?: Record<string, unknown> }[],
): Problem[] =>
  validation.map((entry) => ({
    keyword: entry.keyword,
    path: entry.instancePath.split('/').filter(Boolean),
    message: entry.message ?? 'is not valid',
    code: (entry.params?.params as { code?: string } | undefined)?.code,
    keys: entry.params?.keys as string[] | undefined,
  }));

/** Parses `value` with `schema`, or throws the API error for what is wrong with it. */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, part: ValidationPart): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw problemToApiError(part, problemsOf(result.error));
  return result.data;
}
