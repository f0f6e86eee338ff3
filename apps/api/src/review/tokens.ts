import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Review links: `rvw_<b|j><24-character id>.<issued, base36 ms>.<expiry, base36 s>.<signature>`, the
 * signature a base64url HMAC-SHA256 of the rest, cut to 128 bits (short enough for a URL
 * path segment). A link opens one batch (or one job) on the review page and nothing else:
 * it is never an API key, and the API refuses it on every /v1 route.
 */
const REVIEW_TOKEN_PREFIX = 'rvw_';

export type ReviewSubject = { kind: 'batch' | 'job'; id: string };
export interface ReviewGrant extends ReviewSubject {
  issuedAtMs: number;
  expiresAtMs: number;
}
export type ReviewCheck =
  | { ok: true; grant: ReviewGrant }
  | { ok: false; reason: 'invalid' | 'expired'; expiresAtMs?: number };

const TOKEN = /^rvw_([bj])([0-9A-Za-z]{24})\.([0-9a-z]{1,12})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{22})$/;
const SUBJECT_ID = /^(batch|job)_([0-9A-Za-z]{24})$/;
const sign = (secret: string, body: string): Buffer =>
  createHmac('sha256', secret).update(body).digest().subarray(0, 16);

export function signReviewToken(
  secret: string,
  subject: ReviewSubject,
  expiresAtMs: number,
  issuedAtMs = Date.now(),
): string {
  const id = SUBJECT_ID.exec(subject.id)?.[2];
  if (!id) throw new Error(`not a batch or job id: ${subject.id}`);
  const body = `${REVIEW_TOKEN_PREFIX}${subject.kind === 'batch' ? 'b' : 'j'}${id}.${Math.floor(issuedAtMs).toString(36)}.${Math.floor(expiresAtMs / 1000).toString(36)}`;
  return `${body}.${sign(secret, body).toString('base64url')}`;
}

/** The signature is checked before anything in the token is believed, expiry included. */
export function verifyReviewToken(secret: string, token: string, nowMs = Date.now()): ReviewCheck {
  const match = TOKEN.exec(token);
  if (!match) return { ok: false, reason: 'invalid' };
  const [, kind, id, issued, expiry, signature] = match as unknown as [
    string,
    'b' | 'j',
    string,
    string,
    string,
    string,
  ];
  // Compared as text: base64url decoding ignores the last character's spare bits, so two spellings would pass.
  const given = Buffer.from(signature);
  const expected = Buffer.from(sign(secret, token.slice(0, token.lastIndexOf('.'))).toString('base64url'));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'invalid' };
  const expiresAtMs = parseInt(expiry, 36) * 1000;
  if (expiresAtMs <= nowMs) return { ok: false, reason: 'expired', expiresAtMs };
  return {
    ok: true,
    grant: {
      kind: kind === 'b' ? 'batch' : 'job',
      id: `${kind === 'b' ? 'batch' : 'job'}_${id}`,
      issuedAtMs: parseInt(issued, 36),
      expiresAtMs,
    },
  };
}

export const looksLikeReviewToken = (value: string): boolean => value.startsWith(REVIEW_TOKEN_PREFIX);

/**
 * Revocation of every link to a subject issued up to now (a link shared with the wrong
 * people): one timestamp per subject, kept as long as any link can live.
 */
export interface ReviewRevocations {
  revoke(subjectId: string): Promise<number>;
  /** When the subject's links were last revoked (ms), or 0. */
  revokedAt(subjectId: string): Promise<number>;
}

const MAX_REVIEW_LINK_MS = 30 * 86_400_000;

export function makeReviewRevocations({ redis, prefix }: { redis: Redis; prefix: string }): ReviewRevocations {
  const key = (subjectId: string) => `${prefix}:review:revoked:${subjectId}`;
  return {
    async revoke(subjectId) {
      const now = Date.now();
      await redis.set(key(subjectId), String(now), 'PX', MAX_REVIEW_LINK_MS);
      return now;
    },
    async revokedAt(subjectId) {
      return Number((await redis.get(key(subjectId))) ?? 0);
    },
  };
}

/**
 * The configured secret, or one generated once and kept in Redis so every API process
 * signs and verifies with the same one. Deleting the key (or changing the configured
 * secret) invalidates every review link.
 */
export async function reviewLinkSecret({
  redis,
  prefix,
  configured,
}: {
  redis: Redis;
  prefix: string;
  configured?: string;
}): Promise<string> {
  if (configured) return configured;
  const key = `${prefix}:review:secret`;
  await redis.set(key, randomBytes(32).toString('base64url'), 'NX');
  const secret = await redis.get(key);
  if (!secret) throw new Error('the review link secret could not be stored in Redis');
  return secret;
}
