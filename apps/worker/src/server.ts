import { createRedis, openServices, type Config, type Logger } from '@cutout/shared';
import { makeByByBGClient } from './bybybg/client.ts';
import { startWorkers, type RunningWorkers } from './workers.ts';

export interface RunningWorker { workers: RunningWorkers; close(): Promise<void> }

/**
 * Connects and starts both queues' workers. Closing takes no new jobs, lets in-flight
 * ones finish within `shutdownTimeoutMs`, then disconnects.
 */
export async function startWorker(config: Config, log: Logger): Promise<RunningWorker> {
  const services = await openServices(config, { name: 'cutout-worker', log });
  const connection = createRedis(config.redis.url, { blocking: true, connectionName: 'cutout-worker-bullmq', log });
  const bybybg = makeByByBGClient({
    apiUrl: config.bybybg.apiUrl,
    apiKeys: config.bybybg.apiKeys,
    timeoutMs: config.bybybg.timeoutMs,
    log: log.child({ component: 'bybybg' }),
  });
  const workers = startWorkers({ config, services, connection, bybybg, log });
  return {
    workers,
    async close() {
      const closing = workers.close();
      const timer = setTimeout(() => {
        log.warn({ timeoutMs: config.worker.shutdownTimeoutMs }, 'in-flight jobs did not finish in time; they will be retried');
        void Promise.all([workers.removeBg.close(true), workers.webhooks.close(true)]);
      }, config.worker.shutdownTimeoutMs);
      await closing;
      clearTimeout(timer);
      connection.disconnect();
      await services.close();
    },
  };
}
