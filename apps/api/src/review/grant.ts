import type { FastifyReply, FastifyRequest } from 'fastify';
import { sha256Hex } from '@cutout/shared/infra';
import type { BatchRecord, BatchStore, JobRecord, JobStore } from '@cutout/shared/stores';
import type { ApiKeyStore } from '../auth/api-keys.ts';
import { looksLikeReviewToken, verifyReviewToken, type ReviewRevocations, type ReviewGrant } from './tokens.ts';
import { ApiError } from '../http/errors.ts';
import type { AuthFailures } from '../auth/failures.ts';
import type { Allowance } from '../http/rate-limit.ts';

/** What a valid review link opens: one batch, or one job. */
export type ReviewScope =
  | { kind: 'batch'; token: string; grant: ReviewGrant; batch: BatchRecord }
  | { kind: 'job'; token: string; grant: ReviewGrant; job: JobRecord };

declare module 'fastify' {
  interface FastifyRequest {
    review?: ReviewScope;
  }
}

export interface GrantDeps {
  secret: string;
  batches: BatchStore;
  jobs: JobStore;
  revocations: ReviewRevocations;
  apiKeys: Pick<ApiKeyStore, 'authenticate'>;
  failures: AuthFailures;
  perLink: Allowance;
}

const ISSUED_KEY_IN_URL = /ck_(live|test)_[0-9A-Za-z]{8,}/;

/** Values of a URL that could be an operator's (bootstrap) key: long, and not a review link. */
const couldBeKey = (value: string): boolean =>
  !looksLikeReviewToken(value) && value.length >= 24 && value.length <= 256;

const apiKeyInUrl = () =>
  new ApiError(
    'api_key_in_url',
    'An API key never goes in a URL and cannot open the review page; create a review link with POST /v1/batches/:id/review-link. Revoke this key if the URL was shared.',
  );

/**
 * Refuses a URL that carries an API key, in the path or the query: the review page opens
 * with a review link only, and a key in a URL ends up in browser histories and proxy logs.
 * Issued keys are recognised by their prefix; any other long value is looked up, so an
 * operator's bootstrap key is caught too (at most two look-ups, and only for requests the
 * link's allowance or the address's failed-authentication allowance already let through).
 */
async function refuseApiKeyInUrl(apiKeys: Pick<ApiKeyStore, 'authenticate'>, values: string[]): Promise<void> {
  const suspects = values.filter(couldBeKey).slice(0, 2);
  if ((await Promise.all(suspects.map((value) => apiKeys.authenticate(value)))).some(Boolean)) throw apiKeyInUrl();
}

const queryValues = (request: FastifyRequest): string[] =>
  Object.values((request.query ?? {}) as Record<string, unknown>)
    .flat()
    .filter((value): value is string => typeof value === 'string');

const decodeSafely = (url: string): string => {
  try {
    return decodeURIComponent(url);
  } catch {
    return url;
  }
};

/** Checks the link's signature and expiry: CPU only, no Redis. 401 or 410 otherwise. */
function verifiedGrant(secret: string, token: string): ReviewGrant {
  const check = verifyReviewToken(secret, token);
  if (!check.ok && check.reason === 'expired') {
    throw new ApiError(
      'review_link_expired',
      `This review link expired on ${new Date(check.expiresAtMs!).toISOString()}`,
    );
  }
  if (!check.ok)
    throw new ApiError(
      'review_link_invalid',
      'This review link is not valid; it may have been copied incompletely or changed',
    );
  return check.grant;
}

/** Checks revocation and loads what the link opens; 401 or 404 otherwise. */
async function resolveGrant(
  { batches, jobs, revocations }: Pick<GrantDeps, 'batches' | 'jobs' | 'revocations'>,
  token: string,
  grant: ReviewGrant,
): Promise<ReviewScope> {
  // Every request under a link makes these reads: both at once.
  const [revokedAt, batch, job] = await Promise.all([
    revocations.revokedAt(grant.id),
    grant.kind === 'batch' ? batches.get(grant.id) : null,
    grant.kind === 'job' ? jobs.get(grant.id) : null,
  ]);
  if (grant.issuedAtMs <= revokedAt)
    throw new ApiError('review_link_revoked', `This review link was revoked on ${new Date(revokedAt).toISOString()}`);
  if (batch) return { kind: 'batch', token, grant, batch };
  if (job) return { kind: 'job', token, grant, job };
  const plural = grant.kind === 'batch' ? 'batches' : 'jobs';
  throw new ApiError(
    'not_found',
    `The ${grant.kind} of this review link no longer exists (finished ${plural} are kept for the retention period)`,
  );
}

/**
 * onRequest hook of every /review/:token route (before any body is read): sets
 * `request.review`. Cheap checks first: an address known to be over its failed-authentication
 * allowance, an issued key in the URL, the signature; then the link's own allowance, and
 * only then Redis reads. An invented link counts as a failed authentication.
 */
export function makeRequireGrant(deps: GrantDeps) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    deps.failures.refuseIfBlocked(request);
    if (ISSUED_KEY_IN_URL.test(decodeSafely(request.url))) throw apiKeyInUrl();
    const token = (request.params as { token: string }).token;
    let grant: ReviewGrant;
    try {
      grant = verifiedGrant(deps.secret, token);
    } catch (error) {
      if (!(error instanceof ApiError) || error.statusCode !== 401) throw error;
      await refuseApiKeyInUrl(deps.apiKeys, [token]);
      return deps.failures.fail(request, error);
    }
    request.rateLimitSubject = sha256Hex(token);
    await deps.perLink(request, reply);
    await refuseApiKeyInUrl(deps.apiKeys, queryValues(request));
    request.review = await resolveGrant(deps, token, grant);
  };
}

export function scopeOf(request: FastifyRequest): ReviewScope {
  if (!request.review) throw new ApiError('review_link_invalid', 'This review link is not valid');
  return request.review;
}

/** A job the link may show: the link's job, or an item of the link's batch; 404 otherwise. */
export async function jobInScope(scope: ReviewScope, jobs: JobStore, jobId: string): Promise<JobRecord> {
  if (scope.kind === 'job') {
    if (jobId !== scope.job.id) throw new ApiError('not_found', 'Job not found');
    return scope.job;
  }
  const record = /^job_[0-9A-Za-z]{24}$/.test(jobId) ? await jobs.get(jobId) : null;
  if (!record || record.batchId !== scope.batch.id || record.tenantId !== scope.batch.tenantId)
    throw new ApiError('not_found', 'Job not found');
  return record;
}
