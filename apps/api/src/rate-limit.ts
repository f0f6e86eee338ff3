import type { FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { sha256Hex, type Redis } from '@cutout/shared';
import { ApiError } from './errors.ts';

/** The review page and its data, under a review link: `/review/<token>/…` (not its static assets). */
const REVIEW_PATH = /^\/review\/(?!assets\/)([^/?]+)/;

/**
 * Per-key limit on the /v1 API, counted in Redis so every API process shares it, with the
 * headers ByByBG itself uses (X-RateLimit-Limit/-Remaining/-Reset, Retry-After). When
 * Redis cannot count, requests fail closed with 503 rather than going unlimited. Each
 * review link has an allowance of its own (`perLinkPerMinute`), so a leaked link cannot be
 * used to hammer the API; a page view makes about a hundred requests (thumbnails).
 */
export async function registerRateLimit(app: FastifyInstance, { redis, prefix, perMinute, perLinkPerMinute }: { redis: Redis; prefix: string; perMinute: number; perLinkPerMinute: number }): Promise<void> {
  await app.register(rateLimit, {
    global: true,
    max: (_request, key) => (key.startsWith('review:') ? perLinkPerMinute : perMinute),
    timeWindow: 60_000,
    redis,
    nameSpace: `${prefix}:ratelimit:`,
    skipOnError: false,
    // Keyed by the key itself (hashed): each API key has its own allowance, valid or not.
    keyGenerator: (request) => {
      const link = REVIEW_PATH.exec(request.url)?.[1];
      if (link) return `review:${sha256Hex(link)}`;
      const key = request.headers['x-api-key'];
      return typeof key === 'string' && key ? `key:${sha256Hex(key)}` : `ip:${request.ip}`;
    },
    allowList: (request) => !request.url.startsWith('/v1/') && !REVIEW_PATH.test(request.url),
    errorResponseBuilder: (_request, context) =>
      new ApiError(429, 'rate_limited', `Rate limit of ${context.max} requests per minute exceeded; retry in ${context.after}`),
  });
}
