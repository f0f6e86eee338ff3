import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { createMetrics, createRedis, openServices, type Config, type Logger, type Metrics } from '@cutout/shared/infra';
import { createGuardedAgent } from '@cutout/shared/security';
import { makeByByBGClient } from './bybybg/client.ts';
import { startMetricsServer, type MetricsServer } from './metrics-server.ts';
import { startWorkers, type RunningWorkers } from './workers.ts';

export interface RunningWorker {
  workers: RunningWorkers;
  /** Where this worker's /metrics and /healthz answer; undefined when another server shows its metrics. */
  metricsUrl?: string;
  close(): Promise<void>;
}

export interface WorkerOptions {
  /** A registry shared with the API in the same process (`npm start`): its /metrics shows the worker's too. */
  metrics?: Metrics;
  /** Serve /metrics on WORKER_METRICS_PORT; off when the API in this process already serves the shared registry. */
  serveMetrics?: boolean;
}

/**
 * Connects and starts both queues' workers. Closing takes no new jobs, lets in-flight
 * ones finish within `shutdownTimeoutMs`, then disconnects.
 */
export async function startWorker(
  config: Config,
  log: Logger,
  { metrics = createMetrics(), serveMetrics = true }: WorkerOptions = {},
): Promise<RunningWorker> {
  const services = await openServices(config, { name: 'cutout-worker', log });
  let metricsServer: MetricsServer | undefined;
  try {
    metricsServer = serveMetrics
      ? await startMetricsServer({ metrics, port: config.worker.metricsPort, host: config.api.host })
      : undefined;
  } catch (error) {
    await services.close();
    throw error;
  }
  const untrackQueues = metrics.trackQueues([services.queues.removeBg, services.queues.webhooks], (error) =>
    log.debug({ err: error }, 'queue depth not collected'),
  );
  const untrackEndpoints = metrics.trackFailingEndpoints(() => services.webhookGate.failingCount());
  const connection = createRedis(config.redis, { blocking: true, connectionName: 'cutout-worker-bullmq', log });
  // Result URLs in ByByBG's answers are fetched like a client's image_url: same guard, same allow-list.
  const resultAgent = createGuardedAgent({
    policy: { allowPrivate: config.webhooks.allowPrivate },
    log: log.child({ component: 'url-guard' }),
  });
  // An agent of our own rather than the global dispatcher: on Node 24 that can be the Agent
  // of Node's bundled undici, installed before ours loads, which is not the undici we pin.
  const upstreamAgent = new Agent();
  const bybybg = makeByByBGClient({
    apiUrl: config.bybybg.apiUrl,
    dispatcher: upstreamAgent,
    apiKeys: config.bybybg.apiKeys,
    timeoutMs: config.bybybg.timeoutMs,
    resultDispatcher: resultAgent,
    log: log.child({ component: 'bybybg' }),
    onCall: (status) => metrics.upstreamCalls.inc({ status: String(status) }),
  });
  const workers = startWorkers({ config, services, connection, bybybg, metrics, log });
  return {
    workers,
    metricsUrl: metricsServer?.url,
    async close() {
      const closing = workers.close();
      const timeoutMs = config.worker.shutdownTimeoutMs;
      // BullMQ's close() keeps waiting for running jobs even when called again with force,
      // so the grace period is enforced here; unfinished jobs are retried once their lock expires.
      const closed = closing.then(() => 'closed' as const);
      closed.catch(() => undefined); // a failure after the grace period changes nothing any more
      const outcome = await Promise.race([closed, sleep(timeoutMs, 'expired' as const, { ref: false })]);
      if (outcome === 'expired') {
        log.warn({ timeoutMs }, 'in-flight jobs did not finish in time; they will be retried');
        void Promise.all([workers.removeBg.close(true), workers.webhooks.close(true)]).catch(() => undefined);
      }
      untrackQueues();
      untrackEndpoints();
      await metricsServer?.close();
      connection.disconnect();
      await resultAgent.close();
      // destroy, not close: close waits for calls still in flight after an expired grace period.
      await upstreamAgent.destroy();
      await services.close();
    },
  };
}
