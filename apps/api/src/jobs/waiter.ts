import type { Redis } from 'ioredis';

/**
 * Lets requests with `Prefer: wait=N` sleep until their job ends: one subscription per
 * API process to the channel on which the job store announces ended jobs, so no request
 * polls Redis.
 */
export interface JobWaiter {
  /** Resolves true when `jobId` ends, false after `ms`; `isEnded` closes the race with a job ending before the subscription. */
  wait(jobId: string, ms: number, isEnded: () => Promise<boolean>): Promise<boolean>;
  close(): Promise<void>;
}

export function makeJobWaiter({ subscriber, channel }: { subscriber: Redis; channel: string }): JobWaiter {
  const waiters = new Map<string, Set<() => void>>();
  let subscribed: Promise<unknown> | undefined;

  // A duplicate connection has no error listener of its own; the main one logs Redis trouble.
  subscriber.on('error', () => undefined);
  subscriber.on('message', (_channel: string, jobId: string) => {
    for (const wake of waiters.get(jobId) ?? []) wake();
  });

  return {
    async wait(jobId, ms, isEnded) {
      // The subscriber connects on first use; a failed attempt is retried by the next request.
      subscribed ??= (subscriber.status === 'wait' ? subscriber.connect() : Promise.resolve())
        .then(() => subscriber.subscribe(channel))
        .catch((error: unknown) => {
          subscribed = undefined;
          throw error;
        });
      await subscribed;
      let wake!: () => void;
      const ended = new Promise<boolean>((resolve) => (wake = () => resolve(true)));
      const set = waiters.get(jobId) ?? new Set();
      set.add(wake);
      waiters.set(jobId, set);
      let timer: NodeJS.Timeout | undefined;
      try {
        if (await isEnded()) return true;
        return await Promise.race([
          ended,
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
        ]);
      } finally {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0) waiters.delete(jobId);
      }
    },
    async close() {
      subscriber.disconnect();
    },
  };
}

const MAX_WAIT_SECONDS = 60;

/** `Prefer: wait=N` (RFC 7240), capped at 60 s; undefined when absent or malformed. */
export function preferredWaitMs(header: string | string[] | undefined): number | undefined {
  const text = Array.isArray(header) ? header.join(',') : header;
  const match = text ? /(?:^|[,;\s])wait=(\d{1,5})(?:$|[,;\s])/.exec(text) : null;
  return match ? Math.min(Number(match[1]), MAX_WAIT_SECONDS) * 1000 : undefined;
}
