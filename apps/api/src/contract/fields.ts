import { z } from 'zod';
import type { Config } from '@cutout/shared/infra';
import { parseRenditions, renditionsSchema } from '@cutout/shared/renditions';
import {
  allowedOptionsText,
  checkUrl,
  isOptionName,
  UnsafeUrlError,
  type UnsafeUrlReason,
  type UrlPolicy,
} from '@cutout/shared/security';
import type { ErrorCode } from './error-codes.ts';

/** What the fields are checked against: the SSRF allow-list for URLs, the option names the operator lets through. */
export interface FieldRules {
  urlPolicy: UrlPolicy;
  allowedOptions: readonly string[];
}

export const fieldRulesOf = (config: Config): FieldRules => ({
  urlPolicy: { allowPrivate: config.webhooks.allowPrivate },
  allowedOptions: config.bybybg.allowedOptions,
});

/** A refusal that is answered with `code` (see contract/validation.ts). */
const refuse = (ctx: z.RefinementCtx, code: ErrorCode, message: string): never => {
  ctx.addIssue({ code: 'custom', message, params: { code } });
  return z.NEVER;
};

/** Schemas whose document differs from what they validate with (a transform over `unknown`). */
export const DOCUMENTED_AS = new WeakMap<z.ZodType, z.ZodType>();
export const documentedAs = <T extends z.ZodType>(schema: T, doc: z.ZodType): T => {
  DOCUMENTED_AS.set(schema, doc);
  return schema;
};

const MAX_METADATA_BYTES = 4096;
const MAX_OPTIONS_BYTES = 4096;
const MAX_RENDITIONS_BYTES = 4096;
const MAX_URL_LENGTH = 2048;

/** What a client reads for each reason the SSRF guard gives; `{field}` is the field's name. */
const URL_PROBLEMS: Record<UnsafeUrlReason, string> = {
  invalid_url: '{field} must be an absolute http(s) URL',
  too_long: '{field} is too long',
  bad_scheme: '{field} must use http or https',
  credentials: '{field} must not carry a user name or password',
  missing_host: '{field} has no host',
  private_address: '{field} must point to a public address, not a private, loopback, link-local or metadata one',
  unresolvable: '{field} host has no address',
};

/**
 * A public http(s) URL, checked without DNS so the client hears at once (the worker checks
 * every address again at connect time); the normalised URL, the one checked, is kept.
 */
export const publicUrl = (policy: UrlPolicy, field: string, code: ErrorCode) =>
  z
    .string()
    .max(MAX_URL_LENGTH * 4)
    .transform((text, ctx) => {
      try {
        return checkUrl(text, policy).href;
      } catch (error) {
        if (!(error instanceof UnsafeUrlError)) throw error;
        return refuse(ctx, code, `${URL_PROBLEMS[error.reason].replace('{field}', field)} (${error.message})`);
      }
    })
    .meta({
      format: 'uri',
      description: `A public http(s) URL (no private, loopback, link-local or metadata address; at most ${MAX_URL_LENGTH} characters)`,
    });

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

const metadata = z
  .record(z.string(), z.unknown(), { error: 'metadata must be a JSON object' })
  .superRefine((value, ctx) => {
    if (jsonBytes(value) > MAX_METADATA_BYTES)
      refuse(ctx, 'invalid_metadata', `metadata must be at most ${MAX_METADATA_BYTES} bytes`);
  })
  .describe(`A JSON object of at most ${MAX_METADATA_BYTES} bytes, returned with the job (e.g. a SKU)`);

/** ByByBG takes options as multipart text fields: names lower_snake_case, values strings; only names the operator allows. */
const options = (allowed: readonly string[]) =>
  z
    .record(
      z.string(),
      z.union([z.string(), z.number(), z.boolean()], { error: 'each option must be a string, number or boolean' }),
      { error: 'options must be a JSON object' },
    )
    .superRefine((value, ctx) => {
      if (jsonBytes(value) > MAX_OPTIONS_BYTES)
        return refuse(ctx, 'invalid_options', `options must be at most ${MAX_OPTIONS_BYTES} bytes`);
      for (const name of Object.keys(value)) {
        if (!isOptionName(name))
          return refuse(
            ctx,
            'invalid_options',
            `option name "${name.slice(0, 64)}" must be lower_snake_case and not "file"`,
          );
        if (!allowed.includes(name))
          return refuse(ctx, 'invalid_options', `option "${name}" is not allowed; ${allowedOptionsText(allowed)}`);
      }
    })
    .transform((value) => Object.fromEntries(Object.entries(value).map(([name, option]) => [name, String(option)])))
    .describe(
      `Forwarded to ByByBG as form fields. Names allowed by the operator (BYBYBG_ALLOWED_OPTIONS): ${allowed.length ? allowed.join(', ') : 'none'}`,
    );

/** The rendition specs, refused with a message naming the spec and the field (`renditions[1] ("thumb").format: …`). */
const renditions = documentedAs(
  z.unknown().transform((value, ctx) => {
    if (jsonBytes(value) > MAX_RENDITIONS_BYTES)
      return refuse(ctx, 'invalid_renditions', `renditions must be at most ${MAX_RENDITIONS_BYTES} bytes`);
    const parsed = parseRenditions(value);
    return parsed.ok ? parsed.plans : refuse(ctx, 'invalid_renditions', parsed.message);
  }),
  renditionsSchema.describe('Up to 8 rendition specs, all made from the one ByByBG result'),
);

const itemEvents = z
  .boolean({ error: 'item_events must be true or false' })
  .describe('true: each item sends its own job.succeeded / job.failed too');
const dryRun = z
  .boolean({ error: 'dry_run must be true or false' })
  .describe(
    'true: validate everything and answer what the batch would cost (200, batch_estimate), creating and storing nothing',
  );

/** A form field's text as JSON, then the field's schema; text that is not JSON is refused with the field's code. */
const jsonText = <T extends z.ZodType>(schema: T, code: ErrorCode, what: string) =>
  documentedAs(
    z
      .string()
      .transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          return refuse(ctx, code, what);
        }
      })
      .pipe(schema),
    z.string().describe(`${what}, as text`),
  );

const booleanText = (code: ErrorCode, what: string) =>
  z
    .string()
    .transform((text, ctx) => (text === 'true' || text === 'false' ? text === 'true' : refuse(ctx, code, what)))
    .meta({ description: `${what}: "true" or "false"` });

/**
 * The optional fields of a job (and a batch's settings), as JSON values (`json`) and as the
 * text a multipart form sends (`form`): one definition of each field, its limits and its
 * error code, whichever way it arrives.
 */
export function fieldSchemas(rules: FieldRules) {
  const json = {
    webhook_url: publicUrl(rules.urlPolicy, 'webhook_url', 'invalid_webhook_url'),
    metadata,
    options: options(rules.allowedOptions),
    renditions,
    item_events: itemEvents,
    dry_run: dryRun,
  };
  const form = {
    webhook_url: json.webhook_url,
    metadata: jsonText(metadata, 'invalid_metadata', 'metadata must be a JSON object'),
    options: jsonText(json.options, 'invalid_options', 'options must be a JSON object'),
    renditions: jsonText(renditions, 'invalid_renditions', 'renditions must be a JSON array of rendition specs'),
    item_events: booleanText('invalid_item_events', 'item_events must be true or false'),
    dry_run: booleanText('invalid_dry_run', 'dry_run must be true or false'),
  };
  return { json, form };
}

export type FieldSchemas = ReturnType<typeof fieldSchemas>;
