import { z } from 'zod';
import { jobViewSchema } from '@cutout/shared/views';
import { batchIdParams, jobIdParams } from './common.ts';
import type { OperationSpec } from './operation.ts';

const MIN_LINK_SECONDS = 60;
const MAX_LINK_SECONDS = 30 * 86_400;
const MAX_NOTE = 500;

const timestamp = z.iso.datetime();

const reviewLinkSchema = z
  .object({
    object: z.literal('review_link'),
    url: z.string().describe('The review page; anyone holding it can see the batch (or job) until it expires'),
    batch_id: z.string().optional().describe('On a batch link'),
    job_id: z.string().optional().describe('On a job link'),
    expires_at: timestamp,
  })
  .meta({ id: 'ReviewLink' });

const reviewLinkRevocationSchema = z
  .object({
    object: z.literal('review_link_revocation'),
    batch_id: z.string().optional(),
    job_id: z.string().optional(),
    revoked_at: timestamp.describe('Every link made until now stops working; links made afterwards work'),
  })
  .meta({ id: 'ReviewLinkRevocation' });

const linkBody = z
  .strictObject({
    expires_in: z
      .int({
        error: `expires_in must be a whole number of seconds from ${MIN_LINK_SECONDS} to ${MAX_LINK_SECONDS} (30 days)`,
      })
      .min(
        MIN_LINK_SECONDS,
        `expires_in must be a whole number of seconds from ${MIN_LINK_SECONDS} to ${MAX_LINK_SECONDS} (30 days)`,
      )
      .max(
        MAX_LINK_SECONDS,
        `expires_in must be a whole number of seconds from ${MIN_LINK_SECONDS} to ${MAX_LINK_SECONDS} (30 days)`,
      )
      .optional()
      .describe('Seconds the link lives; default REVIEW_LINK_TTL (24 h)'),
  })
  .nullish();

const verdictBody = z.strictObject({
  verdict: z.literal('rejected', { error: 'verdict must be "rejected" (DELETE clears a verdict)' }),
  note: z
    .string()
    .max(MAX_NOTE, `note must be a string of at most ${MAX_NOTE} characters`)
    .nullable()
    .optional()
    .describe('What is wrong with the cutout'),
});

const linkErrors = ['not_found', 'invalid_request', 'unknown_field', 'unsupported_media_type'] as const;

/** Review links (a signed URL of the review page, so no API key reaches a browser) and reviewers' verdicts. */
export function reviewOperations() {
  return {
    createBatchReviewLink: {
      method: 'POST',
      url: '/v1/batches/:id/review-link',
      operationId: 'createBatchReviewLink',
      tags: ['review'],
      scope: 'jobs:write',
      summary: 'A signed, expiring link to the review page of a batch',
      description:
        'The link opens this batch only, reads its items and records flags; it is refused on every /v1 route. It needs jobs:write, since a reviewer can flag cutouts through it.',
      params: batchIdParams,
      body: linkBody,
      responses: { 201: { description: 'The link', json: reviewLinkSchema } },
      errors: linkErrors,
    },
    createJobReviewLink: {
      method: 'POST',
      url: '/v1/jobs/:id/review-link',
      operationId: 'createJobReviewLink',
      tags: ['review'],
      scope: 'jobs:write',
      summary: 'A signed, expiring link to the review page of one job',
      params: jobIdParams,
      body: linkBody,
      responses: { 201: { description: 'The link', json: reviewLinkSchema } },
      errors: linkErrors,
    },
    revokeBatchReviewLinks: {
      method: 'DELETE',
      url: '/v1/batches/:id/review-links',
      operationId: 'revokeBatchReviewLinks',
      tags: ['review'],
      scope: 'jobs:write',
      summary: 'Revoke every review link to this batch made so far',
      params: batchIdParams,
      responses: { 200: { description: 'When they were revoked', json: reviewLinkRevocationSchema } },
      errors: ['not_found'],
    },
    revokeJobReviewLinks: {
      method: 'DELETE',
      url: '/v1/jobs/:id/review-links',
      operationId: 'revokeJobReviewLinks',
      tags: ['review'],
      scope: 'jobs:write',
      summary: 'Revoke every review link to this job made so far',
      params: jobIdParams,
      responses: { 200: { description: 'When they were revoked', json: reviewLinkRevocationSchema } },
      errors: ['not_found'],
    },
    setJobReview: {
      method: 'PUT',
      url: '/v1/jobs/:id/review',
      operationId: 'setJobReview',
      tags: ['review'],
      scope: 'jobs:write',
      summary: "Flag a succeeded job's cutout as wrong",
      description:
        'The job shows `review`, its batch counts it in `review.rejected`, the manifest has `review: rejected`, and the result is no longer reused for identical images.',
      params: jobIdParams,
      body: verdictBody,
      responses: { 200: { description: 'The job', json: jobViewSchema } },
      errors: ['not_found', 'invalid_request', 'unknown_field', 'unsupported_media_type', 'not_reviewable'],
    },
    clearJobReview: {
      method: 'DELETE',
      url: '/v1/jobs/:id/review',
      operationId: 'clearJobReview',
      tags: ['review'],
      scope: 'jobs:write',
      summary: "Clear a job's review verdict",
      params: jobIdParams,
      responses: { 200: { description: 'The job', json: jobViewSchema } },
      errors: ['not_found', 'not_reviewable'],
    },
  } as const satisfies Record<string, OperationSpec>;
}
