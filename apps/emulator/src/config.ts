import { z } from 'zod';
import { RESPONSE_MODES, type FaultPatch } from './faults.ts';

/** What `main.ts` needs, parsed from the environment in one go. */
interface EmulatorConfig {
  port: number;
  host: string;
  keys: string[];
  logLevel: string;
  faults: FaultPatch;
  maxUploadBytes: number;
}

export type ConfigResult = { ok: true; config: EmulatorConfig } | { ok: false; message: string };

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Unset and empty both mean "use the default", as in a `.env` file with `EMULATOR_X=`. */
const unsetIfEmpty = (value: unknown): unknown => (value === '' ? undefined : value);
const number = (min: number, max: number) => z.preprocess(unsetIfEmpty, z.coerce.number().min(min).max(max).optional());
const integer = (min: number, max: number) =>
  z.preprocess(unsetIfEmpty, z.coerce.number().int().min(min).max(max).optional());
const list = z.preprocess(unsetIfEmpty, z.string().optional()).transform((value) =>
  value === undefined
    ? undefined
    : value
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== ''),
);
const boolean = z
  .preprocess(
    unsetIfEmpty,
    z.enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' }).optional(),
  )
  .transform((value) => (value === undefined ? undefined : ['true', '1', 'yes'].includes(value)));

const envSchema = z.object({
  EMULATOR_PORT: integer(0, 65_535),
  EMULATOR_HOST: z.preprocess(unsetIfEmpty, z.string().optional()),
  EMULATOR_API_KEYS: list,
  EMULATOR_FORBIDDEN_KEYS: list,
  /** Requests per second per key; 0 turns rate limiting off. */
  EMULATOR_RATE_LIMIT: number(0, 1_000_000),
  EMULATOR_BURST: integer(1, 1_000_000),
  EMULATOR_LATENCY_MS: integer(0, 600_000),
  EMULATOR_LATENCY_JITTER_MS: integer(0, 600_000),
  EMULATOR_ERROR_RATE: number(0, 1),
  EMULATOR_HANG_RATE: number(0, 1),
  EMULATOR_TRUNCATE_RATE: number(0, 1),
  EMULATOR_RESPONSE_MODE: z.preprocess(unsetIfEmpty, z.enum(RESPONSE_MODES).optional()),
  EMULATOR_FIXED_RESULT: boolean,
  EMULATOR_TOLERANCE: number(0, 442),
  EMULATOR_MAX_UPLOAD_BYTES: integer(1, 1024 ** 3),
  LOG_LEVEL: z.preprocess(unsetIfEmpty, z.enum(LOG_LEVELS).optional()),
});

/** Pure: takes the environment as a value so it can be tested without touching `process.env`. */
export function parseEmulatorEnv(env: Record<string, string | undefined>): ConfigResult {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    return { ok: false, message: `invalid emulator configuration:\n  ${problems.join('\n  ')}` };
  }
  const e = parsed.data;
  const keys = e.EMULATOR_API_KEYS ?? ['emulator-dev-key'];
  if (keys.length === 0)
    return { ok: false, message: 'invalid emulator configuration:\n  EMULATOR_API_KEYS: no key given' };
  const rate = e.EMULATOR_RATE_LIMIT ?? 10;
  const faults: FaultPatch = {
    rateLimit: rate === 0 ? null : { perSecond: rate, burst: e.EMULATOR_BURST ?? Math.max(1, Math.ceil(rate)) },
    latencyMs: e.EMULATOR_LATENCY_MS,
    latencyJitterMs: e.EMULATOR_LATENCY_JITTER_MS,
    errorRate: e.EMULATOR_ERROR_RATE,
    hangRate: e.EMULATOR_HANG_RATE,
    truncateRate: e.EMULATOR_TRUNCATE_RATE,
    forbiddenKeys: e.EMULATOR_FORBIDDEN_KEYS,
    responseMode: e.EMULATOR_RESPONSE_MODE,
    fixedResult: e.EMULATOR_FIXED_RESULT,
    tolerance: e.EMULATOR_TOLERANCE,
  };
  // Unset variables leave the defaults of DEFAULT_FAULTS in place.
  for (const name of Object.keys(faults) as (keyof FaultPatch)[]) if (faults[name] === undefined) delete faults[name];
  return {
    ok: true,
    config: {
      port: e.EMULATOR_PORT ?? 4010,
      host: e.EMULATOR_HOST ?? '127.0.0.1',
      keys,
      logLevel: e.LOG_LEVEL ?? 'info',
      faults,
      maxUploadBytes: e.EMULATOR_MAX_UPLOAD_BYTES ?? 50 * 1024 * 1024,
    },
  };
}
