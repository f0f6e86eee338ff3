import type { FastifyRequest } from 'fastify';
import type { ApiError } from '../http/errors.ts';
import { clientAddressKey } from './client-address.ts';
import { rateLimited, type RateLimits } from '../http/rate-limit.ts';

/** Addresses remembered as over their allowance, per process; beyond this the oldest are dropped. */
const MAX_REMEMBERED = 10_000;

export interface AuthFailures {
  /** Refuses (429) an address this process already knows to be over its allowance, without Redis. */
  refuseIfBlocked(request: FastifyRequest): void;
  /** Counts a failed authentication, then throws `error`, or 429 once the address is over its allowance. */
  fail(request: FastifyRequest, error: ApiError): Promise<never>;
}

/**
 * Failed authentication (missing, malformed, unknown or revoked keys, invented review
 * links, a wrong admin key) is limited per client address, so cycling invented keys buys
 * nothing. Counting is shared in Redis; once an address is over, each process remembers
 * that until the window ends and answers it 429 without a lookup.
 */
export function makeAuthFailures(limits: Pick<RateLimits, 'countFailure'>, now: () => number = Date.now): AuthFailures {
  const blockedUntil = new Map<string, number>();

  const remember = (address: string, untilMs: number) => {
    blockedUntil.delete(address);
    blockedUntil.set(address, untilMs);
    if (blockedUntil.size <= MAX_REMEMBERED) return;
    for (const [key, until] of blockedUntil) {
      if (blockedUntil.size <= MAX_REMEMBERED && until > now()) break;
      blockedUntil.delete(key);
    }
  };

  const tooMany = (retryAfterSeconds: number) =>
    rateLimited(
      `Too many failed authentications from this address; retry in ${retryAfterSeconds} s`,
      retryAfterSeconds,
    );

  return {
    refuseIfBlocked(request) {
      const address = clientAddressKey(request.ip);
      const until = blockedUntil.get(address);
      if (until === undefined) return;
      if (until <= now()) {
        blockedUntil.delete(address);
        return;
      }
      throw tooMany(Math.ceil((until - now()) / 1000));
    },
    async fail(request, error) {
      const { exceeded, retryAfterSeconds } = await limits.countFailure(request);
      request.log.info({ code: error.code, exceeded }, 'authentication failed');
      if (!exceeded) throw error;
      remember(clientAddressKey(request.ip), now() + retryAfterSeconds * 1000);
      throw tooMany(retryAfterSeconds);
    },
  };
}
