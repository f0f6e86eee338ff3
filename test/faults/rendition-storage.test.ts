import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLogger,
  createMetrics,
  createRedis,
  openServices,
  type Services,
  type Storage,
} from '@cutout/shared/infra';
import { createGuardedAgent } from '@cutout/shared/security';
import { makeByByBGClient } from '../../apps/worker/src/bybybg/client.ts';
import { startWorkers, type RunningWorkers } from '../../apps/worker/src/workers.ts';
import { productImage } from '../helpers/images.ts';
import { emulatorStats, settle, submitPhoto } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';

const SHOT = { width: 600, height: 400, object: { left: 200, top: 100, width: 200, height: 200 } };

/** The real storage, whose first `failures` writes under renditions/ fail as an S3 outage would. */
function failingRenditionWrites(storage: Storage, failures: number): Storage & { refused(): number } {
  let refused = 0;
  return {
    ...storage,
    async putBuffer(key, body, contentType) {
      if (key.startsWith('renditions/') && refused < failures) {
        refused += 1;
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
      }
      return storage.putBuffer(key, body, contentType);
    },
    refused: () => refused,
  };
}

describe('a rendition S3 cannot store', () => {
  let system: TestSystem;
  let services: Services;
  let workers: RunningWorkers;
  let storage: ReturnType<typeof failingRenditionWrites>;
  let closeConnection: () => void;

  beforeAll(async () => {
    system = await startSystem({ workers: 0, env: { BYBYBG_RETRY_DELAY: '50ms' } });
    const log = createLogger({ level: 'silent', name: 'test' });
    const opened = await openServices(system.config, { name: 'test-worker', log });
    storage = failingRenditionWrites(opened.storage, 1);
    services = { ...opened, storage };
    const connection = createRedis(system.config.redis, { blocking: true, connectionName: 'test-worker-bullmq' });
    closeConnection = () => connection.disconnect();
    const resultDispatcher = createGuardedAgent({ policy: { allowPrivate: system.config.webhooks.allowPrivate } });
    const bybybg = makeByByBGClient({
      apiUrl: system.config.bybybg.apiUrl,
      apiKeys: system.config.bybybg.apiKeys,
      timeoutMs: 10_000,
      resultDispatcher,
      log,
    });
    workers = startWorkers({ config: system.config, services, connection, bybybg, metrics: createMetrics(), log });
  });
  afterAll(async () => {
    await workers?.close();
    closeConnection?.();
    await services?.close();
    await system?.close();
  });

  it('fails the attempt, and the retry makes the renditions from the stored cutout without calling ByByBG again', async () => {
    const before = (await emulatorStats(system)).total as number;
    const id = await submitPhoto(system, await productImage('png', SHOT, 1), {
      renditions: JSON.stringify([{ name: 'amazon', preset: 'marketplace' }]),
    });
    const [view] = await settle(system, [id]);
    expect(storage.refused()).toBe(1);
    expect(view).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      upstream_calls: 1,
      renditions: { amazon: { width: 1000, height: 1000 } },
    });
    expect((await emulatorStats(system)).total).toBe(before + 1);
  });
});
