import type { JobRecord } from '@cutout/shared';
import { ApiError } from './errors.ts';

/** Text fields `POST /v1/jobs` accepts besides the `file` part. */
export const JOB_FIELDS: ReadonlySet<string> = new Set(['webhook_url', 'metadata', 'options']);

const MAX_METADATA_BYTES = 4096;
const MAX_URL_LENGTH = 2048;

const invalid = (code: string, message: string) => new ApiError(422, code, message);

/** Validates the optional fields of a job; every problem is a 422 naming the field. */
export function parseJobFields(fields: Record<string, string>): Pick<JobRecord, 'webhookUrl' | 'metadata' | 'options'> {
  return {
    webhookUrl: fields.webhook_url === undefined ? undefined : parseWebhookUrl(fields.webhook_url),
    metadata: fields.metadata === undefined ? undefined : parseMetadata(fields.metadata),
    options: fields.options === undefined ? undefined : parseOptions(fields.options),
  };
}

function parseWebhookUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid('invalid_webhook_url', 'webhook_url must be an absolute http(s) URL');
  }
  if (!['http:', 'https:'].includes(url.protocol)) throw invalid('invalid_webhook_url', 'webhook_url must use http or https');
  if (url.username || url.password) throw invalid('invalid_webhook_url', 'webhook_url must not carry credentials');
  if (text.length > MAX_URL_LENGTH) throw invalid('invalid_webhook_url', `webhook_url is longer than ${MAX_URL_LENGTH} characters`);
  return url.toString();
}

function parseJsonObject(text: string, field: string, code: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid(code, `${field} must be a JSON object`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalid(code, `${field} must be a JSON object`);
  return value as Record<string, unknown>;
}

function parseMetadata(text: string): Record<string, unknown> {
  if (Buffer.byteLength(text) > MAX_METADATA_BYTES) throw invalid('invalid_metadata', `metadata must be at most ${MAX_METADATA_BYTES} bytes`);
  return parseJsonObject(text, 'metadata', 'invalid_metadata');
}

/** Options are forwarded to ByByBG as multipart text fields, so keys and values are strings. */
function parseOptions(text: string): Record<string, string> {
  if (Buffer.byteLength(text) > MAX_METADATA_BYTES) throw invalid('invalid_options', `options must be at most ${MAX_METADATA_BYTES} bytes`);
  const options = parseJsonObject(text, 'options', 'invalid_options');
  const forwarded: Record<string, string> = {};
  for (const [name, value] of Object.entries(options)) {
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(name) || name === 'file') {
      throw invalid('invalid_options', `option name "${name.slice(0, 64)}" must be lower_snake_case and not "file"`);
    }
    if (!['string', 'number', 'boolean'].includes(typeof value)) throw invalid('invalid_options', `option "${name}" must be a string, number or boolean`);
    forwarded[name] = String(value);
  }
  return forwarded;
}
