import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { runScript, type Redis } from '@cutout/shared/infra';
import { ApiError } from './errors.ts';
import { COUNT_ALLOWANCE_LUA, type AllowanceCount, type AllowanceTerms } from '@cutout/shared/stores';
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
  /** The same allowance for a route whose read counts it (`applyAllowanceCount` answers the count). */
  perKeyTerms(request: FastifyRequest): AllowanceTerms;
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

const COUNT_ONE = `${COUNT_ALLOWANCE_LUA}
local current, ttl = countAllowance(KEYS[1], ARGV[1])
return {current, ttl}
`;

/** The X-RateLimit-* headers of a counted request, and 429 when it is over the allowance. */
function applyCount(reply: FastifyReply, { max, remaining, ttlInSeconds, isExceeded }: Counted): void {
  reply
    .header('x-ratelimit-limit', String(max))
    .header('x-ratelimit-remaining', String(remaining))
    .header('x-ratelimit-reset', String(ttlInSeconds));
  if (isExceeded)
    throw rateLimited(`Rate limit of ${max} requests per minute exceeded; retry in ${ttlInSeconds} s`, ttlInSeconds);
}

/** Answers what a script counted (see AllowanceTerms): the headers, and 429 when over. */
export function applyAllowanceCount(reply: FastifyReply, terms: AllowanceTerms, count: AllowanceCount): void {
  const ttlInSeconds = Math.ceil(count.ttlMs / 1000);
  applyCount(reply, {
    isAllowed: false,
    max: terms.max,
    remaining: Math.max(0, terms.max - count.current),
    ttlInSeconds,
    isExceeded: count.current > terms.max,
  });
}

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
  }: {
    redis: Redis;
    prefix: string;
    perMinute: number;
    perLinkPerMinute: number;
    failuresPerMinute: number;
  },
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
    return async (request: FastifyRequest, reply: FastifyReply) => applyCount(reply, await count(request));
  };
  // The per-key allowance is counted by a script of ours (the same Lua as the status read's,
  // which counts it in its own command); the plugin has no way to count inside another script.
  const perKeyTerms = (request: FastifyRequest): AllowanceTerms => ({
    key: `${prefix}:allowance:key:${request.auth?.id ?? 'none'}`,
    max: perMinute,
    windowMs: WINDOW_MS,
  });
  const countFailures = app.createRateLimit({
    keyGenerator: (request) => `fail:${clientAddressKey(request.ip)}`,
    max: failuresPerMinute,
    timeWindow: WINDOW_MS,
  }) as unknown as (request: FastifyRequest) => Promise<Counted>;
  return {
    async perKey(request, reply) {
      const terms = perKeyTerms(request);
      const [current, ttlMs] = (await runScript(redis, COUNT_ONE, 1, terms.key, String(terms.windowMs))) as [
        number,
        number,
      ];
      applyAllowanceCount(reply, terms, { current, ttlMs });
    },
    perKeyTerms,
    perLink: counter((request) => `review:${request.rateLimitSubject ?? 'none'}`, perLinkPerMinute),
    async countFailure(request) {
      const counted = await countFailures(request);
      return { exceeded: counted.isExceeded, retryAfterSeconds: counted.ttlInSeconds };
    },
  };
}
