import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** Paths whose values never reach a log line. */
const REDACT_PATHS = [
  'apiKey', '*.apiKey', 'apiKeys', '*.apiKeys', 'secret', '*.secret', 'secrets', '*.secrets',
  'webhookSecret', '*.webhookSecret', 'webhook_secret', '*.webhook_secret', 'password', '*.password',
  'headers["x-api-key"]', '*.headers["x-api-key"]', 'req.headers["x-api-key"]', 'req.headers.authorization',
  'headers.authorization', '*.headers.authorization', 's3.secretAccessKey', 'bybybg.apiKeys',
];

const PRESIGNED = /([?&])(X-Amz-[A-Za-z-]+|Signature|AWSAccessKeyId|token)=[^&\s"]*/g;

/** Presigned URLs are bearer credentials: keep the path, drop the query signature. */
export function scrubPresigned(value: string): string {
  return value.replace(PRESIGNED, '$1$2=[REDACTED]');
}

function scrubObject(obj: Record<string, unknown>, depth = 0): Record<string, unknown> {
  for (const [key, value] of Object.entries(obj)) {
    if (typeof value === 'string' && value.includes('=')) obj[key] = scrubPresigned(value);
    else if (depth < 2 && value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Error)) {
      obj[key] = scrubObject({ ...(value as Record<string, unknown>) }, depth + 1);
    }
  }
  return obj;
}

export interface LoggerSettings { level: string; name: string; pretty?: boolean }

/** pino-pretty is a development dependency: a production install logs JSON even in a terminal. */
function prettyInstalled(): boolean {
  try {
    import.meta.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/** `destination` (e.g. a test's in-memory stream) replaces stdout; ignored when `pretty` (and pino-pretty is installed). */
export function createLogger({ level, name, pretty = false }: LoggerSettings, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    name,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    formatters: { log: (obj) => scrubObject({ ...obj }) },
    serializers: {
      err: pino.stdSerializers.err,
      // Only what an operator needs: never headers (API keys) or bodies.
      req: (req: { method?: string; url?: string; ip?: string }) => ({ method: req.method, url: req.url, ip: req.ip }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
  };
  if (pretty && prettyInstalled()) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  // Asynchronous stdout: lines written while a write is under way go out together, instead of
  // one system call per line; pino flushes what is pending when the process exits.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
