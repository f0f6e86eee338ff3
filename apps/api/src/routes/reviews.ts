import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { JobRecord } from '@cutout/shared/stores';
import { toJobView } from '@cutout/shared/views';
import { signReviewToken, type ReviewRevocations, type ReviewSubject } from '../review/tokens.ts';
import { reviewOperations } from '../contract/reviews.ts';
import { routeOf } from '../contract/register.ts';
import type { RouteOptions } from '../deps.ts';
import { ownBatch, ownJob } from '../http/owned.ts';
import { recordVerdict } from '../review/verdicts.ts';

export interface ReviewRouteOptions extends RouteOptions {
  secret: string;
  revocations: ReviewRevocations;
}

/**
 * Review links (a signed, expiring URL of the review page, so no API key reaches a browser)
 * and reviewers' verdicts through the API. A link can record verdicts, which needs
 * jobs:write: so minting one, and revoking them, does too.
 */
export const reviewRoutes: FastifyPluginAsync<ReviewRouteOptions> = async (
  plugin,
  { deps, guards, secret, revocations },
) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  const ops = reviewOperations();
  const { config, jobs, batches, storage } = deps;
  const verdictDeps = { reviews: deps.reviews, redis: deps.redis, prefix: config.redis.prefix };
  const view = (record: JobRecord) => toJobView(record, storage, config.api.resultUrlTtlMs);

  const link = (subject: ReviewSubject, expiresInSeconds: number | undefined) => {
    const expiresAtMs =
      Date.now() + (expiresInSeconds === undefined ? config.api.reviewLinkTtlMs : expiresInSeconds * 1000);
    return {
      object: 'review_link' as const,
      url: `${config.api.publicBaseUrl}/review/${signReviewToken(secret, subject, expiresAtMs)}`,
      [`${subject.kind}_id`]: subject.id,
      expires_at: new Date(Math.floor(expiresAtMs / 1000) * 1000).toISOString(),
    };
  };
  // Every link to the batch (or job) made until now stops working; new links work.
  const revoked = async (subject: ReviewSubject) => ({
    object: 'review_link_revocation' as const,
    [`${subject.kind}_id`]: subject.id,
    revoked_at: new Date(await revocations.revoke(subject.id)).toISOString(),
  });

  app.route({
    ...routeOf(ops.createBatchReviewLink, guards),
    handler: async (request, reply) =>
      reply
        .status(201)
        .send(link({ kind: 'batch', id: (await ownBatch(batches, request)).id }, request.body?.expires_in)),
  });
  app.route({
    ...routeOf(ops.createJobReviewLink, guards),
    handler: async (request, reply) =>
      reply.status(201).send(link({ kind: 'job', id: (await ownJob(jobs, request)).id }, request.body?.expires_in)),
  });
  app.route({
    ...routeOf(ops.revokeBatchReviewLinks, guards),
    handler: async (request) => revoked({ kind: 'batch', id: (await ownBatch(batches, request)).id }),
  });
  app.route({
    ...routeOf(ops.revokeJobReviewLinks, guards),
    handler: async (request) => revoked({ kind: 'job', id: (await ownJob(jobs, request)).id }),
  });
  app.route({
    ...routeOf(ops.setJobReview, guards),
    handler: async (request) => {
      const note = request.body.note?.trim();
      return view(await recordVerdict(verdictDeps, await ownJob(jobs, request), note ? { note } : {}));
    },
  });
  app.route({
    ...routeOf(ops.clearJobReview, guards),
    handler: async (request) => view(await recordVerdict(verdictDeps, await ownJob(jobs, request), null)),
  });
};
