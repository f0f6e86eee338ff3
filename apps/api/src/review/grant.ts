import type { FastifyReply, FastifyRequest } from 'fastify';
import { looksLikeReviewToken, verifyReviewToken, type ApiKeyStore, type ReviewRevocations, type BatchRecord, type BatchStore, type JobRecord, type JobStore, type ReviewGrant } from '@cutout/shared';
import { ApiError } from '../errors.ts';

/** What a valid review link opens: one batch, or one job. */
export type ReviewScope =
  | { kind: 'batch'; token: string; grant: ReviewGrant; batch: BatchRecord }
  | { kind: 'job'; token: string; grant: ReviewGrant; job: JobRecord };

declare module 'fastify' {
  interface FastifyRequest {
    review?: ReviewScope;
  }
}

export interface GrantDeps { secret: string; batches: BatchStore; jobs: JobStore; revocations: ReviewRevocations; apiKeys: Pick<ApiKeyStore, 'authenticate'> }

const ISSUED_KEY_IN_URL = /ck_(live|test)_[0-9A-Za-z]{8,}/;

/**
 * Refuses a URL that carries an API key, in the path or the query: the review page opens
 * with a review link only, and a key in a URL ends up in browser histories and proxy logs.
 * Issued keys are recognised by their prefix; any other long value is looked up, so an
 * operator's bootstrap key is caught too.
 */
export async function refuseApiKeyInUrl(apiKeys: Pick<ApiKeyStore, 'authenticate'>, request: FastifyRequest): Promise<void> {
  const token = (request.params as { token?: string }).token ?? '';
  const query = Object.values((request.query ?? {}) as Record<string, unknown>).flat().filter((value): value is string => typeof value === 'string');
  const suspects = [token, ...query].filter((value) => !looksLikeReviewToken(value) && value.length >= 24 && value.length <= 256);
  const found = ISSUED_KEY_IN_URL.test(decodeSafely(request.url))
    || (await Promise.all(suspects.slice(0, 5).map((value) => apiKeys.authenticate(value)))).some(Boolean);
  if (found) {
    throw new ApiError(400, 'api_key_in_url', 'An API key never goes in a URL and cannot open the review page; create a review link with POST /v1/batches/:id/review-link. Revoke this key if the URL was shared.');
  }
}

const decodeSafely = (url: string): string => {
  try {
    return decodeURIComponent(url);
  } catch {
    return url;
  }
};

/** Checks the link's signature, expiry and revocation and loads what it opens; 401, 410 or 404 otherwise. */
export async function resolveGrant({ secret, batches, jobs, revocations }: Omit<GrantDeps, 'apiKeys'>, token: string): Promise<ReviewScope> {
  const check = verifyReviewToken(secret, token);
  if (!check.ok && check.reason === 'expired') {
    throw new ApiError(410, 'review_link_expired', `This review link expired on ${new Date(check.expiresAtMs!).toISOString()}`);
  }
  if (!check.ok) throw new ApiError(401, 'review_link_invalid', 'This review link is not valid; it may have been copied incompletely or changed');
  const { grant } = check;
  // Every request under a link makes these reads: both at once.
  const [revokedAt, batch, job] = await Promise.all([
    revocations.revokedAt(grant.id),
    grant.kind === 'batch' ? batches.get(grant.id) : null,
    grant.kind === 'job' ? jobs.get(grant.id) : null,
  ]);
  if (grant.issuedAtMs <= revokedAt) throw new ApiError(401, 'review_link_revoked', `This review link was revoked on ${new Date(revokedAt).toISOString()}`);
  if (batch) return { kind: 'batch', token, grant, batch };
  if (job) return { kind: 'job', token, grant, job };
  const plural = grant.kind === 'batch' ? 'batches' : 'jobs';
  throw new ApiError(404, 'not_found', `The ${grant.kind} of this review link no longer exists (finished ${plural} are kept for the retention period)`);
}

/** preHandler for every /review/:token route: sets `request.review`. */
export function makeRequireGrant(deps: GrantDeps) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    await refuseApiKeyInUrl(deps.apiKeys, request);
    request.review = await resolveGrant(deps, (request.params as { token: string }).token);
  };
}

export function scopeOf(request: FastifyRequest): ReviewScope {
  if (!request.review) throw new ApiError(401, 'review_link_invalid', 'This review link is not valid');
  return request.review;
}

/** A job the link may show: the link's job, or an item of the link's batch; 404 otherwise. */
export async function jobInScope(scope: ReviewScope, jobs: JobStore, jobId: string): Promise<JobRecord> {
  if (scope.kind === 'job') {
    if (jobId !== scope.job.id) throw new ApiError(404, 'not_found', 'Job not found');
    return scope.job;
  }
  const record = /^job_[0-9A-Za-z]{24}$/.test(jobId) ? await jobs.get(jobId) : null;
  if (!record || record.batchId !== scope.batch.id || record.tenantId !== scope.batch.tenantId) throw new ApiError(404, 'not_found', 'Job not found');
  return record;
}
