import { z } from 'zod';
import { JOB_ERROR_CODES, JOB_STATUSES, WAITING_REASONS, WEBHOOK_STATES, type WaitingReason } from './job-codes.ts';
import type { JobRecord } from '../stores/job-store.ts';
import { QUALITY_FLAGS, qualityView } from './quality.ts';
import type { Storage } from '../infra/storage.ts';

const timestamp = z.iso.datetime();

/** One rendition as clients see it: a fresh presigned URL, or why it could not be made. */
export const renditionViewSchema = z
  .union([
    z.object({
      url: z.string().describe('A fresh presigned URL'),
      content_type: z.string(),
      width: z.int(),
      height: z.int(),
      bytes: z.int(),
      upscaled: z.boolean().describe('Whether the product was enlarged to reach min_size'),
      expires_at: timestamp,
    }),
    z.object({ error: z.string().describe('Why this rendition could not be made (the job still succeeded)') }),
  ])
  .meta({ id: 'Rendition' });

export type RenditionView = z.output<typeof renditionViewSchema>;

const qualityViewSchema = z
  .object({
    flags: z.array(z.enum(QUALITY_FLAGS)).describe('Automatic checks of the cutout that failed; [] for a good one'),
    subject_coverage: z.number().describe('Share of the frame the opaque product covers (0 to 1)'),
    edge_contact: z.number().describe('Largest share of one edge of the frame the opaque product touches (0 to 1)'),
    semitransparent_share: z.number().describe('Share of partly transparent pixels among the visible ones (0 to 1)'),
  })
  .meta({ id: 'Quality' });

/** A job as clients see it: `GET /v1/jobs/:id` and the `data` of webhook events. */
export const jobViewSchema = z
  .object({
    id: z.string().meta({ example: 'job_3kTq9ZbXw2Lm8Rp5Yc1Nv7Ha' }),
    object: z.literal('job'),
    status: z.enum(JOB_STATUSES),
    created_at: timestamp,
    started_at: timestamp.nullable(),
    finished_at: timestamp.nullable(),
    waiting_reason: z
      .enum(WAITING_REASONS)
      .nullable()
      .describe('Why a queued job waits; null when it just waits its turn'),
    attempts: z.int().describe('Attempts used; a 429 pause uses none'),
    upstream_calls: z.int().describe('Requests this job made to ByByBG'),
    credits_saved: z.int().describe("1 when an identical earlier image's result was reused instead of calling ByByBG"),
    input: z.object({
      bytes: z.int(),
      content_type: z.string().nullable().describe('null for a batch URL item not fetched yet'),
    }),
    result: z
      .object({
        url: z.string().describe('A fresh presigned URL of the transparent PNG'),
        content_type: z.string(),
        bytes: z.int(),
        expires_at: timestamp,
      })
      .nullable(),
    renditions: z
      .record(z.string(), renditionViewSchema)
      .nullable()
      .describe('Every requested rendition by name once the job succeeded ({} when none was asked for); null before'),
    quality: qualityViewSchema.nullable().describe("The cutout's automatic checks once the job succeeded; null before"),
    error: z
      .object({
        code: z.enum(JOB_ERROR_CODES),
        message: z.string(),
        retryable: z.boolean().describe('Whether submitting the image again later may succeed'),
      })
      .nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable().describe('The JSON object given at submission'),
    batch_id: z.string().nullable().describe('The batch this job is an item of'),
    client_ref: z.string().nullable().describe("The client's name for a batch item (client_ref, a file name)"),
    review: z
      .object({ verdict: z.literal('rejected'), note: z.string().nullable(), reviewed_at: timestamp })
      .nullable()
      .describe("A reviewer's verdict on the cutout (review page or PUT /v1/jobs/{id}/review)"),
    rerun_of: z.string().nullable().describe('The job whose original this job processed again'),
    webhook: z
      .object({
        url: z.string(),
        state: z.enum(WEBHOOK_STATES),
        attempts: z.int(),
        last_status_code: z.int().nullable(),
        last_error: z.string().nullable(),
        last_attempt_at: timestamp.nullable(),
        next_attempt_at: timestamp.nullable().describe('When a pending or endpoint_failing delivery is tried next'),
        delivered_at: timestamp.nullable(),
      })
      .nullable(),
  })
  .meta({ id: 'Job', description: 'A job: one image, its status, its result or error' });

export type JobView = z.output<typeof jobViewSchema>;

/**
 * Renders a record with a fresh presigned result URL valid for `resultUrlTtlMs`.
 * `heldBecause` is why the workers hold every queued job right now (a bad key, a 429 pause).
 */
export async function toJobView(
  record: JobRecord,
  storage: Storage,
  resultUrlTtlMs: number,
  heldBecause?: WaitingReason | null,
): Promise<JobView> {
  const now = Date.now();
  const result =
    record.status === 'succeeded' && record.resultKey
      ? {
          url: await storage.presign(record.resultKey, resultUrlTtlMs),
          content_type: record.resultContentType ?? 'image/png',
          bytes: record.resultBytes ?? 0,
          expires_at: new Date(now + resultUrlTtlMs).toISOString(),
        }
      : null;
  return {
    id: record.id,
    object: 'job',
    status: record.status,
    created_at: record.createdAt,
    started_at: record.startedAt ?? null,
    finished_at: record.finishedAt ?? null,
    waiting_reason: record.status === 'queued' ? (heldBecause ?? record.waitingReason ?? null) : null,
    attempts: record.attempts,
    upstream_calls: record.upstreamCalls,
    credits_saved: record.creditsSaved ?? 0,
    input: { bytes: record.originalBytes ?? 0, content_type: record.originalContentType ?? null },
    result,
    renditions: result ? await renditionViews(record, storage, resultUrlTtlMs, now) : null,
    quality: result ? qualityView(record.quality) : null,
    error: record.error ?? null,
    metadata: record.metadata ?? null,
    batch_id: record.batchId ?? null,
    client_ref: record.clientRef ?? null,
    review: reviewView(record),
    rerun_of: record.rerunOf ?? null,
    webhook: record.webhookUrl
      ? {
          url: record.webhookUrl,
          state: record.webhook?.state ?? 'pending',
          attempts: record.webhook?.attempts ?? 0,
          last_status_code: record.webhook?.lastStatusCode ?? null,
          last_error: record.webhook?.lastError ?? null,
          last_attempt_at: record.webhook?.lastAttemptAt ?? null,
          next_attempt_at: record.webhook?.nextAttemptAt ?? null,
          delivered_at: record.webhook?.deliveredAt ?? null,
        }
      : null,
  };
}

/** Presigns each stored rendition (a local signature, no S3 round trip). */
export async function renditionViews(
  record: JobRecord,
  storage: Storage,
  ttlMs: number,
  now = Date.now(),
): Promise<Record<string, RenditionView>> {
  const views: Record<string, RenditionView> = {};
  for (const [name, stored] of Object.entries(record.renditions ?? {})) {
    views[name] =
      'error' in stored
        ? { error: stored.error }
        : {
            url: await storage.presign(stored.key, ttlMs),
            content_type: stored.contentType,
            width: stored.width,
            height: stored.height,
            bytes: stored.bytes,
            upscaled: stored.upscaled,
            expires_at: new Date(now + ttlMs).toISOString(),
          };
  }
  return views;
}

export const reviewView = ({ review }: JobRecord): JobView['review'] =>
  review ? { verdict: review.verdict, note: review.note ?? null, reviewed_at: review.reviewedAt } : null;
