import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/**
 * Fields whose values never reach a log line, wherever they are (up to three levels deep):
 * API keys, webhook secrets, passwords, S3 credentials. Censored by the formatters below in
 * the one pass that also scrubs presigned URLs; pino's own path redaction ran a redactor on
 * every field of every line, a fifth of the cost of a status poll's log line.
 */
const SECRET_FIELDS: ReadonlySet<string> = new Set([
  'apiKey',
  'apiKeys',
  'secret',
  'secrets',
  'webhookSecret',
  'webhook_secret',
  'password',
  'secretAccessKey',
]);
/** Request headers that carry credentials, censored in any `headers` object. */
const SECRET_HEADERS: ReadonlySet<string> = new Set(['x-api-key', 'authorization']);
const CENSOR = '[REDACTED]';

const PRESIGNED = /([?&])(X-Amz-[A-Za-z-]+|Signature|AWSAccessKeyId|token)=[^&\s"]*/g;

/** Presigned URLs are bearer credentials: keep the path, drop the query signature. */
export function scrubPresigned(value: string): string {
  return value.replace(PRESIGNED, '$1$2=[REDACTED]');
}

/** Censors secrets and presigned signatures in `obj`, a copy the caller made (nested objects are copied here). */
function scrubObject(obj: Record<string, unknown>, depth = 0, headers = false): Record<string, unknown> {
  for (const key in obj) {
    const value = obj[key];
    if (value === undefined || value === null) continue;
    if (SECRET_FIELDS.has(key) || (headers && SECRET_HEADERS.has(key.toLowerCase()))) obj[key] = CENSOR;
    else if (typeof value === 'string') {
      if (value.includes('=')) obj[key] = scrubPresigned(value);
    } else if (key === 'headers' && typeof value === 'object' && !Array.isArray(value)) {
      obj[key] = scrubObject({ ...(value as Record<string, unknown>) }, depth + 1, true);
    } else if (depth < 2 && value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Error)) {
      obj[key] = scrubObject({ ...(value as Record<string, unknown>) }, depth + 1);
    }
  }
  return obj;
}

export interface LoggerSettings {
  level: string;
  name: string;
  pretty?: boolean;
}

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
    formatters: {
      log: (obj) => scrubObject({ ...obj }),
    },
    serializers: {
      // After the formatter: an error's own fields are scrubbed once serialized.
      err: (error: Error) => scrubObject({ ...pino.stdSerializers.err(error) }),
      // Only what an operator needs: never headers (API keys) or bodies.
      req: (req: { method?: string; url?: string; ip?: string }) => ({ method: req.method, url: req.url, ip: req.ip }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
  };
  if (pretty && prettyInstalled()) {
    return scrubbingBindings(
      pino({
        ...options,
        transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
      }),
    );
  }
  // Asynchronous stdout: lines written while a write is under way go out together, instead of
  // one system call per line; pino flushes what is pending when the process exits.
  return scrubbingBindings(pino(options, destination ?? pino.destination({ dest: 1, sync: false })));
}

/**
 * A child's fields (`log.child({...})`, `setBindings`) are written on each of its lines, and
 * pino gives children no formatter of their own: they are scrubbed as they are bound. Every
 * child inherits these from the root logger (pino children are objects derived from it).
 */
function scrubbingBindings(root: Logger): Logger {
  const { child, setBindings } = root;
  root.child = function scrubbedChild(this: Logger, bindings, options) {
    return child.call(this, scrubObject({ ...bindings }), options);
  } as Logger['child'];
  root.setBindings = function scrubbedBindings(this: Logger, bindings) {
    setBindings.call(this, scrubObject({ ...bindings }));
  };
  return root;
}
