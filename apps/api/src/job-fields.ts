import {
  allowedOptionsText, checkUrl, isOptionName, parseRenditions, refusedOptions, UnsafeUrlError,
  type Config, type JobRecord, type RenditionPlan, type UnsafeUrlReason, type UrlPolicy,
} from '@cutout/shared';
import type { ErrorCode } from './contract/error-codes.ts';
import { ApiError } from './errors.ts';

/** Text fields `POST /v1/jobs` accepts besides the `file` part. */
export const JOB_FIELDS: ReadonlySet<string> = new Set(['image_url', 'webhook_url', 'metadata', 'options', 'renditions']);

const MAX_METADATA_BYTES = 4096;

const invalid = (code: ErrorCode, message: string) => new ApiError(code, message);

/**
 * What the fields are checked against: the SSRF allow-list (WEBHOOK_ALLOW_PRIVATE) for the
 * webhook URL, and the option names the operator lets through to ByByBG.
 */
export interface FieldRules { urlPolicy: UrlPolicy; allowedOptions: readonly string[] }

export const fieldRulesOf = (config: Config): FieldRules => ({
  urlPolicy: { allowPrivate: config.webhooks.allowPrivate }, allowedOptions: config.bybybg.allowedOptions,
});

/** Validates the optional fields of a job; every problem is a 422 naming the field. */
export function parseJobFields(fields: Record<string, string>, rules: FieldRules): Pick<JobRecord, 'webhookUrl' | 'metadata' | 'options' | 'renditionPlans'> {
  return {
    webhookUrl: fields.webhook_url === undefined ? undefined : parseWebhookUrl(fields.webhook_url, rules.urlPolicy),
    metadata: fields.metadata === undefined ? undefined : parseMetadata(fields.metadata),
    options: fields.options === undefined ? undefined : parseOptions(fields.options, rules.allowedOptions),
    renditionPlans: fields.renditions === undefined ? undefined : parseRenditionsField(fields.renditions),
  };
}

/**
 * Checks one field as it arrives, so a multipart form whose fields come before the file is
 * refused before the upload streams to S3.
 */
export function checkJobField(name: string, value: string, rules: FieldRules): void {
  if (name === 'image_url') return; // fetched (and checked) once every field is in
  parseJobFields({ [name]: value }, rules);
}

/**
 * Options a rerun takes over from its source job: those the operator has stopped allowing
 * since are refused, so the client decides what to send instead.
 */
export function checkInheritedOptions(options: Record<string, string> | undefined, allowed: readonly string[]): void {
  const refused = refusedOptions(options, allowed);
  if (refused.length > 0) {
    throw invalid('invalid_options', `the original job's options ${refused.map((name) => `"${name}"`).join(', ')} are not forwarded any more (${allowedOptionsText(allowed)}); send "options" with the rerun`);
  }
}

/** What a client reads for each reason the SSRF guard gives. */
const WEBHOOK_URL_PROBLEMS: Record<UnsafeUrlReason, string> = {
  invalid_url: 'webhook_url must be an absolute http(s) URL',
  too_long: 'webhook_url is too long',
  bad_scheme: 'webhook_url must use http or https',
  credentials: 'webhook_url must not carry a user name or password',
  missing_host: 'webhook_url has no host',
  private_address: 'webhook_url must point to a public address, not a private, loopback, link-local or metadata one',
  unresolvable: 'webhook_url host has no address',
};

/**
 * An early, DNS-free check, so a client hears about a bad URL at once; the worker checks
 * every address again at connect time, after DNS. Stores the normalised URL, which is the
 * one that was checked. `field` names the field in the message.
 */
export function parseWebhookUrl(text: string, policy: UrlPolicy, field = 'webhook_url'): string {
  try {
    return checkUrl(text, policy).href;
  } catch (error) {
    if (!(error instanceof UnsafeUrlError)) throw error;
    throw invalid('invalid_webhook_url', `${WEBHOOK_URL_PROBLEMS[error.reason].replace(/^webhook_url/, field)} (${error.message})`);
  }
}

function parseJsonObject(text: string, field: string, code: ErrorCode): Record<string, unknown> {
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

const MAX_RENDITIONS_BYTES = 4096;

/** `renditions`: a JSON array of specs (a JSON string in a form); each problem names the spec and the field. */
function parseRenditionsField(text: string): RenditionPlan[] {
  if (Buffer.byteLength(text) > MAX_RENDITIONS_BYTES) throw invalid('invalid_renditions', `renditions must be at most ${MAX_RENDITIONS_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid('invalid_renditions', 'renditions must be a JSON array of rendition specs');
  }
  const parsed = parseRenditions(value);
  if (!parsed.ok) throw invalid('invalid_renditions', parsed.message);
  return parsed.plans;
}

/**
 * Options are forwarded to ByByBG as multipart text fields, so keys and values are strings;
 * only the names in `allowed` are.
 */
function parseOptions(text: string, allowed: readonly string[]): Record<string, string> {
  if (Buffer.byteLength(text) > MAX_METADATA_BYTES) throw invalid('invalid_options', `options must be at most ${MAX_METADATA_BYTES} bytes`);
  const options = parseJsonObject(text, 'options', 'invalid_options');
  const forwarded: Record<string, string> = {};
  for (const [name, value] of Object.entries(options)) {
    if (!isOptionName(name)) {
      throw invalid('invalid_options', `option name "${name.slice(0, 64)}" must be lower_snake_case and not "file"`);
    }
    if (!allowed.includes(name)) throw invalid('invalid_options', `option "${name}" is not allowed; ${allowedOptionsText(allowed)}`);
    if (!['string', 'number', 'boolean'].includes(typeof value)) throw invalid('invalid_options', `option "${name}" must be a string, number or boolean`);
    forwarded[name] = String(value);
  }
  return forwarded;
}
