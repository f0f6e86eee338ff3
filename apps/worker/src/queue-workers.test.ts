import { describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '@cutout/shared/infra';
import { queueWorker, type Processors } from './queue-workers.ts';

describe('queueWorker', () => {
  it('refuses to start a queue that has no processor', () => {
    const processors = { [QUEUE_NAMES.removeBg]: async () => undefined } as unknown as Processors;
    expect(() => queueWorker(QUEUE_NAMES.webhooks, processors, { connection: {}, autorun: false })).toThrow(
      'no processor for the "webhooks" queue: the worker does not start',
    );
  });

  it('starts one with its processor, under the queue name', async () => {
    const processors: Processors = {
      [QUEUE_NAMES.removeBg]: async () => undefined,
      [QUEUE_NAMES.webhooks]: async () => undefined,
    };
    const worker = queueWorker(QUEUE_NAMES.webhooks, processors, {
      connection: { host: '127.0.0.1', port: 6379, lazyConnect: true },
      autorun: false,
    });
    expect(worker.name).toBe('webhooks');
    await worker.close();
  });
});
