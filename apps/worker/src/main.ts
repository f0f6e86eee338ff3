import { configOrExit, createLogger, exitOnStartupError, onShutdownSignal } from '@cutout/shared/infra';
import { startWorker } from './server.ts';

const config = configOrExit(process.env, { bybybgKey: true });
const log = createLogger({ level: config.logLevel, name: 'worker', pretty: process.stdout.isTTY });

try {
  const worker = await startWorker(config, log);
  log.info(
    { concurrency: config.worker.concurrency, upstream: config.bybybg.apiUrl, metricsUrl: worker.metricsUrl },
    'worker started',
  );
  onShutdownSignal(log, () => worker.close());
} catch (error) {
  exitOnStartupError(log, error, 'worker');
}
