import type { JobError, JobRecord, JobStatus } from './job-store.ts';
import { qualityView, type QualityView } from './quality.ts';
import type { Storage } from './storage.ts';

/** One rendition as clients see it: a fresh presigned URL, or why it could not be made. */
export type RenditionView =
  | { url: string; content_type: string; width: number; height: number; bytes: number; upscaled: boolean; expires_at: string }
  | { error: string };

/** A job as clients see it: `GET /v1/jobs/:id` and the `data` of webhook events. */
export interface JobView {
  id: string;
  object: 'job';
  status: JobStatus;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  waiting_reason: string | null;
  attempts: number;
  upstream_calls: number;
  /** 1 when an identical earlier image's result was reused instead of calling ByByBG. */
  credits_saved: number;
  input: { bytes: number; content_type: string };
  result: { url: string; content_type: string; bytes: number; expires_at: string } | null;
  /** Every requested rendition by name once the job succeeded (`{}` when none was asked for); null before. */
  renditions: Record<string, RenditionView> | null;
  /** The cutout's automatic checks once the job succeeded; null before (and for a failed job). */
  quality: QualityView | null;
  error: JobError | null;
  metadata: Record<string, unknown> | null;
  /** The batch this job is an item of, and the client's name for the item there. */
  batch_id: string | null;
  client_ref: string | null;
  /** A reviewer's verdict on the result (review page or `PUT /v1/jobs/:id/review`). */
  review: { verdict: 'rejected'; note: string | null; reviewed_at: string } | null;
  /** The job whose original this job processed again. */
  rerun_of: string | null;
  webhook: {
    url: string; state: string; attempts: number; last_status_code: number | null;
    last_error: string | null; last_attempt_at: string | null; delivered_at: string | null;
  } | null;
}

/**
 * Renders a record with a fresh presigned result URL valid for `resultUrlTtlMs`.
 * `heldBecause` is why the workers hold every queued job right now (a bad key, a 429 pause).
 */
export async function toJobView(record: JobRecord, storage: Storage, resultUrlTtlMs: number, heldBecause?: string | null): Promise<JobView> {
  const now = Date.now();
  const result = record.status === 'succeeded' && record.resultKey
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
    waiting_reason: record.status === 'queued' ? heldBecause ?? record.waitingReason ?? null : null,
    attempts: record.attempts,
    upstream_calls: record.upstreamCalls,
    credits_saved: record.creditsSaved ?? 0,
    input: { bytes: record.originalBytes, content_type: record.originalContentType },
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
          delivered_at: record.webhook?.deliveredAt ?? null,
        }
      : null,
  };
}

/** Presigns each stored rendition (a local signature, no S3 round trip). */
export async function renditionViews(record: JobRecord, storage: Storage, ttlMs: number, now = Date.now()): Promise<Record<string, RenditionView>> {
  const views: Record<string, RenditionView> = {};
  for (const [name, stored] of Object.entries(record.renditions ?? {})) {
    views[name] = 'error' in stored
      ? { error: stored.error }
      : {
          url: await storage.presign(stored.key, ttlMs), content_type: stored.contentType, width: stored.width, height: stored.height,
          bytes: stored.bytes, upscaled: stored.upscaled, expires_at: new Date(now + ttlMs).toISOString(),
        };
  }
  return views;
}

export const reviewView = ({ review }: JobRecord): JobView['review'] =>
  review ? { verdict: review.verdict, note: review.note ?? null, reviewed_at: review.reviewedAt } : null;
