import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { randomBase62 } from '@cutout/shared/infra';
import { deleteKeysWithPrefix } from '../../test/helpers/processes.ts';

/**
 * BullMQ's own ceiling on this Redis: `jobs` no-op jobs added with addBulk, one worker at
 * concurrency 50; returns jobs per second from the first add to the last completion.
 */
export async function bullmqNoopRate(redisUrl: string, jobs: number, timeoutMs = 120_000): Promise<number> {
  const prefix = `cutout-bench-noop-${randomBase62(8)}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const workerConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('noop', { connection, prefix });
  let completed = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const worker = new Worker('noop', async () => undefined, {
    connection: workerConnection,
    prefix,
    concurrency: 50,
    autorun: false,
  });
  worker.on('completed', () => {
    completed += 1;
    if (completed >= jobs) resolveDone();
  });
  try {
    await worker.waitUntilReady();
    const started = performance.now();
    void worker.run();
    for (let index = 0; index < jobs; index += 1000) {
      await queue.addBulk(
        Array.from({ length: Math.min(1000, jobs - index) }, (_, offset) => ({
          name: 'noop',
          data: { n: index + offset },
        })),
      );
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`only ${completed} of ${jobs} no-op jobs within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    return jobs / ((performance.now() - started) / 1000);
  } finally {
    await worker.close();
    await queue.close();
    connection.disconnect();
    workerConnection.disconnect();
    await deleteKeysWithPrefix(redisUrl, prefix);
  }
}
