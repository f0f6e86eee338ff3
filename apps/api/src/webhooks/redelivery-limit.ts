import type { Redis } from '@cutout/shared/infra';
import { ApiError } from '../http/errors.ts';

const WINDOW_MS = 60_000;

export interface RedeliveryLimit {
  /** Counts one redeliver or recover call of the tenant; 429 beyond the allowance of this minute. */
  take(tenantId: string): Promise<void>;
}

/**
 * A per-tenant allowance of redeliver and recover calls, stricter than the per-key request
 * limit they also count against: each such call makes Cutout POST to a receiver again, so
 * it must not become a way to have Cutout flood one. Counted after authentication (it is
 * keyed on the tenant, across its keys) and before any work, so a call that finds a
 * delivery already pending counts too. A fixed one-minute window in Redis, shared by every
 * API process; written here because the request limiter runs before authentication and
 * knows keys, not tenants.
 */
export function makeRedeliveryLimit({
  redis,
  prefix,
  perMinute,
}: {
  redis: Redis;
  prefix: string;
  perMinute: number;
}): RedeliveryLimit {
  return {
    async take(tenantId) {
      const now = Date.now();
      const window = Math.floor(now / WINDOW_MS);
      const key = `${prefix}:redelivery-allowance:${tenantId}:${window}`;
      const [[error, count] = [null, 0]] =
        (await redis
          .multi()
          .incr(key)
          .pexpire(key, WINDOW_MS + 1_000)
          .exec()) ?? [];
      if (error) throw error;
      if (Number(count) <= perMinute) return;
      const retryAfter = Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - now) / 1000));
      throw new ApiError(
        'rate_limited',
        `At most ${perMinute} webhook redeliveries per minute for this tenant (WEBHOOK_REDELIVERIES_PER_MINUTE); retry in ${retryAfter} s`,
        { 'retry-after': String(retryAfter) },
      );
    },
  };
}
