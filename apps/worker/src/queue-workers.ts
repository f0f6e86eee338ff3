import { Worker, type Job, type WorkerOptions } from 'bullmq';
import type { PayloadOf, QueueName } from '@cutout/shared/infra';

/** What processes one job of queue `N`, typed by the queue's payload (`QueuePayloads`). */
type Processor<N extends QueueName> = (job: Job<PayloadOf<N>>, token?: string) => Promise<void>;
/** A processor for every queue the producers know. */
export type Processors = { [N in QueueName]: Processor<N> };

/**
 * A BullMQ worker of queue `name` with its processor from `processors`. A queue without one
 * refuses to start: its jobs would otherwise wait in Redis with nobody to take them.
 */
export function queueWorker<N extends QueueName>(
  name: N,
  processors: Processors,
  options: WorkerOptions,
): Worker<PayloadOf<N>> {
  const processor = processors[name] as Processor<N> | undefined;
  if (typeof processor !== 'function')
    throw new Error(`no processor for the "${name}" queue: the worker does not start`);
  return new Worker<PayloadOf<N>>(name, processor, options);
}
