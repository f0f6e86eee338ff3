import type { FastifyInstance } from 'fastify';
import { signReviewToken, TERMINAL_STATUSES, toJobView, type ReviewRevocations, type ReviewSubject } from '@cutout/shared';
import type { AppDeps } from '../app.ts';
import { ApiError } from '../errors.ts';
import { rerunFields, rerunJob } from '../reruns.ts';
import { ownBatch, ownJob } from '../owned.ts';
import { parseVerdict, recordVerdict } from '../review/verdicts.ts';
import type { Guards } from './jobs.ts';

interface IdParams { Params: { id: string } }

const MIN_LINK_SECONDS = 60;
const MAX_LINK_SECONDS = 30 * 86_400;

/** `expires_in` (seconds) from an optional JSON body; the configured lifetime otherwise. */
function linkLifetimeMs(body: unknown, fallbackMs: number): number {
  const value = (body && typeof body === 'object' ? body : {}) as { expires_in?: unknown };
  if (value.expires_in === undefined) return fallbackMs;
  const seconds = value.expires_in;
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < MIN_LINK_SECONDS || seconds > MAX_LINK_SECONDS) {
    throw new ApiError('invalid_request', `expires_in must be a whole number of seconds from ${MIN_LINK_SECONDS} to ${MAX_LINK_SECONDS} (30 days)`);
  }
  return seconds * 1000;
}

/**
 * Review links (a signed, expiring, read-only URL for the review page, so no API key
 * reaches a browser), reviewers' verdicts through the API, and reruns of a job's original.
 */
export function reviewRoutes(app: FastifyInstance, deps: AppDeps & { revocations: ReviewRevocations }, { canWrite }: Guards, secret: string): void {
  const { config, jobs, batches, storage } = deps;
  const verdictDeps = { reviews: deps.reviews, redis: deps.redis, prefix: config.redis.prefix };

  function link(subject: ReviewSubject, body: unknown) {
    const expiresAtMs = Date.now() + linkLifetimeMs(body, config.api.reviewLinkTtlMs);
    const token = signReviewToken(secret, subject, expiresAtMs);
    return {
      object: 'review_link', url: `${config.api.publicBaseUrl}/review/${token}`,
      [`${subject.kind}_id`]: subject.id, expires_at: new Date(Math.floor(expiresAtMs / 1000) * 1000).toISOString(),
    };
  }

  app.post<IdParams>('/v1/batches/:id/review-link', { onRequest: canWrite }, async (request, reply) => {
    const batch = await ownBatch(batches, request);
    return reply.status(201).send(link({ kind: 'batch', id: batch.id }, request.body));
  });

  app.post<IdParams>('/v1/jobs/:id/review-link', { onRequest: canWrite }, async (request, reply) => {
    const job = await ownJob(jobs, request);
    return reply.status(201).send(link({ kind: 'job', id: job.id }, request.body));
  });

  // A link can record verdicts, which needs jobs:write: so minting one (and revoking them) does too.
  // Every link to the batch (or job) issued until now stops working; new links work.
  const revoked = async (subject: ReviewSubject) =>
    ({ object: 'review_link_revocation', [`${subject.kind}_id`]: subject.id, revoked_at: new Date(await deps.revocations.revoke(subject.id)).toISOString() });

  app.delete<IdParams>('/v1/batches/:id/review-links', { onRequest: canWrite }, async (request) => revoked({ kind: 'batch', id: (await ownBatch(batches, request)).id }));
  app.delete<IdParams>('/v1/jobs/:id/review-links', { onRequest: canWrite }, async (request) => revoked({ kind: 'job', id: (await ownJob(jobs, request)).id }));

  app.put<IdParams>('/v1/jobs/:id/review', { onRequest: canWrite }, async (request) => {
    const verdict = parseVerdict(request.body);
    return toJobView(await recordVerdict(verdictDeps, await ownJob(jobs, request), verdict), storage, config.api.resultUrlTtlMs);
  });

  app.delete<IdParams>('/v1/jobs/:id/review', { onRequest: canWrite }, async (request) =>
    toJobView(await recordVerdict(verdictDeps, await ownJob(jobs, request), null), storage, config.api.resultUrlTtlMs));

  app.post<IdParams>('/v1/jobs/:id/rerun', { onRequest: canWrite }, async (request, reply) => {
    const source = await ownJob(jobs, request);
    if (!TERMINAL_STATUSES.includes(source.status)) throw new ApiError('job_not_finished', `The job is ${source.status}; rerun it once it has ended`);
    const body = request.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body)) throw new ApiError('invalid_request', 'The body must be a JSON object');
    const record = await rerunJob(deps, source, rerunFields(body as Record<string, unknown>, ['options', 'renditions', 'webhook_url', 'metadata'], 'invalid_request'));
    request.log.info({ job_id: record.id, rerun_of: source.id }, 'job rerun accepted');
    const url = `${config.api.publicBaseUrl}/v1/jobs/${record.id}`;
    return reply.status(202).header('location', url).send(await toJobView(record, storage, config.api.resultUrlTtlMs));
  });
}
