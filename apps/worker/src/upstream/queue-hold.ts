import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '@cutout/shared/infra';
import {
  HOLD_REASONS,
  upstreamKeys,
  type HoldProblem,
  type HoldReason,
  type Holds,
  type UpstreamState,
} from '@cutout/shared/stores';
import type { ByByBGClient } from '../bybybg/client.ts';
import { holdExpired, probeClears, probeRaises, type HoldPolicy } from './hold-rules.ts';

export interface QueueHold {
  /** A call found the account unable to work (every key refused, no credit): hold the queue for every worker. */
  hold(reason: HoldReason, message: string): Promise<void>;
  start(): void;
  stop(): void;
}

export interface QueueHoldDeps {
  redis: Redis;
  prefix: string;
  queue: Queue;
  upstream: UpstreamState;
  bybybg: Pick<ByByBGClient, 'probe'>;
  policies: Readonly<Record<HoldReason, HoldPolicy>>;
  /** A hold this process started, or ended after `heldMs` (metrics). */
  onChange?: (reason: HoldReason, change: 'started' | 'ended', heldMs?: number) => void;
  /** The holds in force, read about once a second (metrics). */
  onState?: (holds: Holds) => void;
  log: Logger;
}

const LOG: Readonly<Record<HoldReason, { started: string; ended: string }>> = {
  upstream_unauthorized: {
    started: 'ByByBG rejected every API key (401); queue held until a key works',
    ended: 'ByByBG accepts the API key again; resuming the queue',
  },
  upstream_out_of_credit: {
    started: 'ByByBG account is out of credit (402); queue held until a probe call succeeds',
    ended: 'ByByBG accepts calls again: credit is back; resuming the queue',
  },
};

const PROBE_MESSAGES: Readonly<Record<HoldReason, string>> = {
  upstream_unauthorized: 'ByByBG rejected every configured API key (401)',
  upstream_out_of_credit: 'ByByBG says the account is out of credit (HTTP 402)',
};

/**
 * When the account, not a job, is at fault — every key refused (401), no credit left (402) —
 * the jobs must not spend their attempts or the account's calls: the queue is paused for all
 * workers, readiness says why, and one probe request per interval (one worker at a time,
 * through a Redis lock) asks ByByBG whether it works again. When it does, the queue resumes
 * by itself. A hold with a budget stops holding the queue once it outlives it; the jobs then
 * fail or wait on their own (processors/spend.ts). A worker started while every key is refused
 * probes at once: it may bring a new key.
 */
export function makeQueueHold({
  redis,
  prefix,
  queue,
  upstream,
  bybybg,
  policies,
  onChange,
  onState,
  log,
}: QueueHoldDeps): QueueHold {
  const lockKey = upstreamKeys(prefix).probeLock;
  let timer: NodeJS.Timeout | undefined;
  let ticking = false;

  async function start(reason: HoldReason, message: string): Promise<boolean> {
    const since = new Date().toISOString();
    const started = await upstream.setHold(reason, { since, message });
    if (!started) return false;
    // The first probe comes one interval after the hold began, not at once.
    await redis.set(lockKey, '1', 'PX', policies[reason].probeIntervalMs);
    onChange?.(reason, 'started');
    log.error({ reason, since, probeIntervalMs: policies[reason].probeIntervalMs }, LOG[reason].started);
    return true;
  }

  async function end(reason: HoldReason, problem: HoldProblem): Promise<void> {
    if (!(await upstream.clearHold(reason))) return;
    const heldMs = Date.now() - Date.parse(problem.since);
    onChange?.(reason, 'ended', heldMs);
    log.info({ reason, since: problem.since, heldMs }, LOG[reason].ended);
  }

  const holding = (holds: Holds, now: number) =>
    HOLD_REASONS.some((reason) => holds[reason] && !holdExpired(holds[reason]!, policies[reason], now));

  /** Pauses, then looks again: a probe that ended the last hold meanwhile must not leave the queue paused. */
  async function pauseWhileHeld(): Promise<void> {
    await queue.pause();
    if (!holding(await upstream.holds(), Date.now())) await queue.resume();
  }

  async function probe(holds: Holds): Promise<void> {
    const outcome = await bybybg.probe();
    const raised = probeRaises(outcome);
    if (raised && !holds[raised]) await start(raised, PROBE_MESSAGES[raised]);
    for (const reason of HOLD_REASONS) {
      const problem = holds[reason];
      if (problem && probeClears(reason, outcome)) await end(reason, problem);
    }
    if (!holding(await upstream.holds(), Date.now())) await queue.resume();
  }

  async function tick(force: boolean): Promise<void> {
    if (ticking) return;
    ticking = true;
    try {
      const holds = await upstream.holds();
      onState?.(holds);
      const active = HOLD_REASONS.filter((reason) => holds[reason]);
      if (active.length === 0) return;
      // Keep the queue held even if the worker that found the problem died before pausing it;
      // once every hold outlived its budget, let the jobs decide for themselves.
      if (holding(holds, Date.now())) await pauseWhileHeld();
      else if (await queue.isPaused()) await queue.resume();
      const intervalMs = Math.min(...active.map((reason) => policies[reason].probeIntervalMs));
      // A worker starting with a refused key held may bring a new key: it probes at once. Credit
      // is the account's, the same for every worker: its probes keep to the interval.
      const acquired =
        (force && holds.upstream_unauthorized !== undefined) ||
        (await redis.set(lockKey, '1', 'PX', intervalMs, 'NX')) === 'OK';
      if (acquired) await probe(holds);
    } catch (error) {
      log.warn({ err: error }, 'ByByBG probe could not run');
    } finally {
      ticking = false;
    }
  }

  return {
    async hold(reason, message) {
      await start(reason, message);
      await pauseWhileHeld();
    },
    start() {
      void tick(true);
      const everyMs = Math.min(1_000, ...HOLD_REASONS.map((reason) => policies[reason].probeIntervalMs));
      timer = setInterval(() => void tick(false), everyMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
