import { z } from 'zod';
import { CUTOUT_MODES } from './problem-cutouts.ts';

/** How a successful result is delivered; ByByBG does not document its format, so clients must handle all of these. */
export const RESPONSE_MODES = ['image', 'json-base64', 'json-url', 'bad'] as const;
export type ResponseMode = (typeof RESPONSE_MODES)[number];

const fraction = z.number().min(0).max(1);
const milliseconds = z.number().int().min(0).max(600_000);

const rateLimitSchema = z.strictObject({
  perSecond: z.number().positive().max(1_000_000),
  burst: z.number().int().min(1).max(1_000_000),
});
export type RateLimit = z.infer<typeof rateLimitSchema>;

/**
 * Everything a test or benchmark may change at run time through `PUT /_faults`.
 * `tolerance` is not a fault, but living here lets a test tune the cutout without a restart.
 */
const faultSettingsSchema = z.strictObject({
  latencyMs: milliseconds,
  latencyJitterMs: milliseconds,
  /** null = unlimited (no 429s, no X-RateLimit-* headers). */
  rateLimit: rateLimitSchema.nullable(),
  /** false: only Retry-After on a 429, no X-RateLimit-* headers (ByByBG does not promise them). */
  rateLimitHeaders: z.boolean(),
  errorRate: fraction,
  hangRate: fraction,
  truncateRate: fraction,
  forbiddenKeys: z.array(z.string().min(1)).max(10_000),
  responseMode: z.enum(RESPONSE_MODES),
  fixedResult: z.boolean(),
  /** Which cutout a successful call answers: `real`, or a problem case (`empty`, `unchanged`, `cut_off`, `ghost`). */
  cutout: z.enum(CUTOUT_MODES),
  /** Euclidean RGB distance (0–441.7) within which a pixel counts as background. */
  tolerance: z.number().min(0).max(442),
  /**
   * Credits left on the account: each call that passes the credit check uses one (given back
   * unless it is answered 200); at 0 every call is answered 402. null = unlimited.
   */
  credits: z.number().int().min(0).max(1_000_000_000).nullable(),
});
export type FaultSettings = z.infer<typeof faultSettingsSchema>;

/** A partial update: only the fields present change. */
const faultPatchSchema = faultSettingsSchema.partial();
export type FaultPatch = z.infer<typeof faultPatchSchema>;

const DEFAULT_FAULTS: FaultSettings = {
  latencyMs: 0,
  latencyJitterMs: 0,
  rateLimit: { perSecond: 10, burst: 10 },
  rateLimitHeaders: true,
  errorRate: 0,
  hangRate: 0,
  truncateRate: 0,
  forbiddenKeys: [],
  responseMode: 'image',
  fixedResult: false,
  cutout: 'real',
  tolerance: 32,
  credits: null,
};

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string };

/** One readable line listing every problem, e.g. `errorRate: Too big…; responseMode: Invalid option…`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(body)'}: ${issue.message}`)
    .join('; ');
}

export function parseFaultPatch(input: unknown): ParseResult<FaultPatch> {
  const parsed = faultPatchSchema.safeParse(input);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, message: formatIssues(parsed.error) };
}

/** Full settings from defaults plus overrides; throws on invalid input (start-up and tests only). */
export function makeFaultSettings(overrides: FaultPatch = {}): FaultSettings {
  return faultSettingsSchema.parse({ ...DEFAULT_FAULTS, ...overrides });
}

/** What happens to one call before (hang, error) or after (truncate) the real work. */
export type FaultDecision =
  | { kind: 'none' }
  | { kind: 'hang' }
  | { kind: 'error'; status: 500 | 502 | 503 }
  | { kind: 'truncate' };

const ERROR_STATUSES = [500, 502, 503] as const;

/**
 * Draws the fate of one call. The rates are checked in a fixed order (hang, error, truncate),
 * each with its own draw, so setting one rate to 1 makes that fault certain regardless of the others.
 */
export function decideFault(settings: FaultSettings, random: () => number): FaultDecision {
  if (settings.hangRate > 0 && random() < settings.hangRate) return { kind: 'hang' };
  if (settings.errorRate > 0 && random() < settings.errorRate) {
    const index = Math.min(ERROR_STATUSES.length - 1, Math.floor(random() * ERROR_STATUSES.length));
    return { kind: 'error', status: ERROR_STATUSES[index] ?? 500 };
  }
  if (settings.truncateRate > 0 && random() < settings.truncateRate) return { kind: 'truncate' };
  return { kind: 'none' };
}

/** Fixed latency plus a uniform 0..jitter extra. */
export function latencyFor(settings: FaultSettings, random: () => number): number {
  const jitter = settings.latencyJitterMs > 0 ? Math.floor(random() * (settings.latencyJitterMs + 1)) : 0;
  return settings.latencyMs + jitter;
}
