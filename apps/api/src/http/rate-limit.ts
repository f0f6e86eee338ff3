import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Redis } from '@cutout/shared/infra';
import { ApiError } from './errors.ts';
import { clientAddressKey } from '../auth/client-address.ts';

/** One allowance, counted in Redis so every API process shares it. */
export type Allowance = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** What `createRateLimit` answers for one counted request. */
interface Counted {
  isAllowed: boolean;
  max: number;
  remaining: number;
  ttlInSeconds: number;
  isExceeded: boolean;
}

export interface RateLimits {
  /** An authenticated API key (`request.auth`): API_RATE_LIMIT_PER_MINUTE. */
  perKey: Allowance;
  /** A review link (`request.rateLimitSubject`): REVIEW_RATE_LIMIT_PER_MINUTE. */
  perLink: Allowance;
  /** Counts one failed authentication of the caller's address; true when it is over the allowance. */
  countFailure(request: FastifyRequest): Promise<{ exceeded: boolean; retryAfterSeconds: number }>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** What a review-link request is counted against: a digest of the link. */
    rateLimitSubject?: string;
  }
}

const WINDOW_MS = 60_000;

export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new ApiError('rate_limited', message, { 'retry-after': String(Math.max(1, retryAfterSeconds)) });

/**
 * The API's allowances, keyed on who calls (an API key's id, a review link, the client
 * address of failed authentications), never on the request's path: the route hooks that
 * call them are attached to the matched route, so `/%761/account` is counted exactly like
 * `/v1/account`. When Redis cannot count, requests fail with 503 rather than going unlimited.
 */
export async function registerRateLimits(
  app: FastifyInstance,
  {
    redis,
    prefix,
    perMinute,
    perLinkPerMinute,
    failuresPerMinute,
  }: { redis: Redis; prefix: string; perMinute: number; perLinkPerMinute: number; failuresPerMinute: number },
): Promise<RateLimits> {
  await app.register(rateLimit, {
    global: false,
    redis,
    nameSpace: `${prefix}:ratelimit:`,
    skipOnError: false,
    timeWindow: WINDOW_MS,
  });
  const counter = (keyGenerator: (request: FastifyRequest) => string, max: number) => {
    const count = app.createRateLimit({ keyGenerator, max, timeWindow: WINDOW_MS }) as unknown as (
      request: FastifyRequest,
    ) => Promise<Counted>;
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const counted = await count(request);
      reply
        .header('x-ratelimit-limit', String(counted.max))
        .header('x-ratelimit-remaining', String(counted.remaining))
        .header('x-ratelimit-reset', String(counted.ttlInSeconds));
      if (counted.isExceeded)
        throw rateLimited(
          `Rate limit of ${counted.max} requests per minute exceeded; retry in ${counted.ttlInSeconds} s`,
          counted.ttlInSeconds,
        );
    };
  };
  const countFailures = app.createRateLimit({
    keyGenerator: (request) => `fail:${clientAddressKey(request.ip)}`,
    max: failuresPerMinute,
    timeWindow: WINDOW_MS,
  }) as unknown as (request: FastifyRequest) => Promise<Counted>;
  return {
    perKey: counter((request) => `key:${request.auth?.id ?? 'none'}`, perMinute),
    perLink: counter((request) => `review:${request.rateLimitSubject ?? 'none'}`, perLinkPerMinute),
    async countFailure(request) {
      const counted = await countFailures(request);
      return { exceeded: counted.isExceeded, retryAfterSeconds: counted.ttlInSeconds };
    },
  };
}
