import { configOrExit, createLogger, exitOnStartupError, onShutdownSignal } from '@cutout/shared/infra';
import { startApi } from './server.ts';

const config = configOrExit(process.env);
const log = createLogger({ level: config.logLevel, name: 'api', pretty: process.stdout.isTTY });

try {
  const api = await startApi(config, log);
  log.info({ url: api.url, publicBaseUrl: config.api.publicBaseUrl }, 'api listening');
  onShutdownSignal(log, () => api.close());
} catch (error) {
  exitOnStartupError(log, error, 'api');
}
