import type { Redis } from 'ioredis';
import type { Logger } from '@cutout/shared/infra';
import type { Budgets, UpstreamState } from '@cutout/shared/stores';
import { CREDIT_LOT, tenantOfLot, type ParkingLots } from './parking.ts';

export interface Waker {
  start(): void;
  stop(): void;
}

export interface WakerDeps {
  redis: Redis;
  prefix: string;
  parking: ParkingLots;
  budgets: Pick<Budgets, 'room'>;
  upstream: Pick<UpstreamState, 'hold'>;
  intervalMs?: number;
  log: Logger;
}

/** Most jobs one lot wakes per round: a large backlog comes back over a few seconds, not in one burst. */
const WAKE_CHUNK = 500;

/**
 * Wakes parked jobs as soon as they may run: a tenant's as its budget has room again (raised,
 * cleared, or a call given back; a period rolling over wakes them by their own delay too), the
 * credit lot's once the account has credit again. No more of a tenant's jobs are woken than its
 * budget has room for. One worker at a time does it, through a Redis lock, about once a second.
 */
export function makeWaker({ redis, prefix, parking, budgets, upstream, intervalMs = 1_000, log }: WakerDeps): Waker {
  const lockKey = `${prefix}:parked-lots:lock`;
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  async function allowance(lot: string): Promise<number> {
    if (lot === CREDIT_LOT) return (await upstream.hold('upstream_out_of_credit')) ? 0 : WAKE_CHUNK;
    const tenantId = tenantOfLot(lot);
    return tenantId === undefined ? WAKE_CHUNK : Math.min(WAKE_CHUNK, await budgets.room(tenantId));
  }

  async function round(): Promise<void> {
    if (running) return;
    running = true;
    try {
      if ((await redis.set(lockKey, '1', 'PX', intervalMs, 'NX')) !== 'OK') return;
      for (const lot of await parking.lots()) {
        const count = await allowance(lot);
        if (count <= 0) continue;
        const woken = await parking.wake(lot, count);
        if (woken > 0) log.info({ lot, woken }, 'parked jobs woken');
      }
    } catch (error) {
      log.warn({ err: error }, 'parked jobs not woken this round');
    } finally {
      running = false;
    }
  }

  return {
    start() {
      timer = setInterval(() => void round(), intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
