import { z } from 'zod';
import { idParams } from './operation.ts';

export const jobIdParams = idParams('job', /^job_[0-9A-Za-z]{24}$/, 'job_3kTq9ZbXw2Lm8Rp5Yc1Nv7Ha');
export const batchIdParams = idParams('batch', /^batch_[0-9A-Za-z]{24}$/, 'batch_7Qm2Xw9Lr4Tz1Vb8Kc3Np6Hs');

const MAX_PAGE = 100;

/** `?limit=` (1 to 100, default 20) and `?cursor=` (the `next_cursor` of the previous page). */
export const pageQuery = {
  limit: z.coerce
    .number({ error: `limit must be 1 to ${MAX_PAGE}` })
    .int(`limit must be 1 to ${MAX_PAGE}`)
    .min(1, `limit must be 1 to ${MAX_PAGE}`)
    .max(MAX_PAGE, `limit must be 1 to ${MAX_PAGE}`)
    .default(20)
    .describe('Items per page, 1 to 100'),
  cursor: z.string().max(512).optional().describe('next_cursor of the previous page'),
};

export const idempotencyKeyHeader = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'Idempotency-Key must be 1 to 255 printable ASCII characters without spaces')
  .optional()
  .describe(
    'A retry with the same key and the same request within 24 h gets the first answer (Idempotent-Replayed: true) instead of doing it again',
  );

export const preferHeader = z
  .string()
  .max(256)
  .optional()
  .describe('`wait=N` (N ≤ 60): hold the answer until the job ends, at most N seconds');

/** A page of items: `{ data, next_cursor }`. */
export { listOf } from './operation.ts';

/** A 302 to a fresh presigned S3 URL. */
export const redirect = (description: string) => ({ description, headers: ['location'] as const });
