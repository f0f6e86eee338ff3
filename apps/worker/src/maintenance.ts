import type { Config, Logger, Services } from '@cutout/shared/infra';
import { failAbandonedCreations } from '@cutout/shared/stores';
import { sweepUploads } from './upload-sweep.ts';

export interface Maintenance {
  stop(): Promise<void>;
}

/**
 * What every worker sweeps each MAINTENANCE_INTERVAL (several workers sweeping at once is
 * safe: each step is claimed in Redis): batch creations whose API process died half-way
 * become `failed_to_create`; batches with items not yet handed to the queue get them (the
 * backstop of the feeding done as items start); expired direct uploads lose their objects.
 */
export function startMaintenance({
  services,
  config,
  log,
}: {
  services: Services;
  config: Config;
  log: Logger;
}): Maintenance {
  const { jobs, batches, queues, uploads, storage } = services;
  async function sweep(): Promise<void> {
    const failed = await failAbandonedCreations({ jobs, batches, removeBg: queues.removeBg });
    if (failed.length > 0)
      log.warn({ batch_ids: failed }, 'batch creations that stopped half-way marked failed_to_create');
    const queued = await services.batchFeeder.topUpAll();
    if (queued > 0) log.debug({ queued }, 'batch items queued by the sweep');
    const deleted = await sweepUploads({ uploads, storage, retentionMs: config.jobRetentionMs });
    if (deleted > 0) log.info({ uploads: deleted }, 'expired uploads deleted');
  }
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= sweep()
      .catch((error: unknown) => log.warn({ err: error }, 'maintenance sweep failed; it runs again'))
      .finally(() => (running = undefined));
  }, config.worker.maintenanceIntervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
