import { ConfigError, loadConfig, type Config, type ConfigNeeds } from './config.ts';
import type { Logger } from './logger.ts';
import { RedisEvictionPolicyError, RedisUnavailableError } from './redis.ts';

/** For `main.ts`: the validated config, or one message listing every problem and exit 1. */
export function configOrExit(env: Record<string, string | undefined>, needs: ConfigNeeds = {}): Config {
  try {
    return loadConfig(env, needs);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

const REDIS_HINT = 'Start one with `docker compose up -d redis`, or point REDIS_URL at a running Redis.';

/** For `main.ts`: logs why start-up failed, with a hint for the usual causes, and exits 1. */
export function exitOnStartupError(log: Logger, error: unknown, what: string): never {
  if (error instanceof RedisUnavailableError) log.fatal(`${error.message}. ${REDIS_HINT}`);
  else if (error instanceof RedisEvictionPolicyError) log.fatal(error.message);
  else log.fatal({ err: error }, `${what} failed to start`);
  process.exit(1);
}

/** Runs `close` once on SIGTERM/SIGINT, then exits 0 (1 if closing failed). */
export function onShutdownSignal(log: Logger, close: () => Promise<void>): void {
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
