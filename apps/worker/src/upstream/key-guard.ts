import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { upstreamKeys, type Logger, type UpstreamState } from '@cutout/shared';
import type { ByByBGClient } from '../bybybg/client.ts';

export interface KeyGuard {
  /** Every configured key answered 401: hold the whole queue until a key works again. */
  onUnauthorized(message: string): Promise<void>;
  start(): void;
  stop(): void;
}

export interface KeyGuardDeps {
  redis: Redis;
  prefix: string;
  queue: Queue;
  upstream: UpstreamState;
  bybybg: Pick<ByByBGClient, 'probeKeys'>;
  probeIntervalMs: number;
  log: Logger;
}

/**
 * A bad or expired ByByBG key is the account's problem, not the jobs': instead of every
 * job burning its attempts, the queue is paused for all workers, readiness says why, and
 * one request a minute (one worker at a time, through a Redis lock) probes the keys.
 * When one works the queue resumes by itself. A worker started with a new key probes
 * at once.
 */
export function makeKeyGuard({ redis, prefix, queue, upstream, bybybg, probeIntervalMs, log }: KeyGuardDeps): KeyGuard {
  const lockKey = upstreamKeys(prefix).probeLock;
  let timer: NodeJS.Timeout | undefined;
  let probing = false;

  async function probe(force: boolean): Promise<void> {
    if (probing) return;
    probing = true;
    try {
      if (!(await upstream.keyProblem())) return;
      // Keep the queue held even if the worker that found the problem died before pausing it.
      await queue.pause();
      const acquired = force || (await redis.set(lockKey, '1', 'PX', probeIntervalMs, 'NX')) === 'OK';
      if (!acquired) return;
      if (!(await bybybg.probeKeys())) return;
      if (await upstream.clearKeyProblem()) log.info('ByByBG accepts the API key again; resuming the queue');
      await queue.resume();
    } catch (error) {
      log.warn({ err: error }, 'ByByBG key probe could not run');
    } finally {
      probing = false;
    }
  }

  return {
    async onUnauthorized(message) {
      const first = (await upstream.keyProblem()) === null;
      await upstream.setKeyProblem({ since: new Date().toISOString(), message });
      await queue.pause();
      await redis.set(lockKey, '1', 'PX', probeIntervalMs);
      if (first) log.error({ probeIntervalMs }, 'ByByBG rejected every API key (401); queue paused until a key works');
    },
    start() {
      void probe(true);
      timer = setInterval(() => void probe(false), Math.min(probeIntervalMs, 1_000));
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
