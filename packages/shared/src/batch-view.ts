import type { BatchRecord, BatchStatus } from './batch-store.ts';

/** A batch as clients see it: `GET /v1/batches/:id` and the `data` of `batch.completed`. */
export interface BatchView {
  id: string;
  object: 'batch';
  status: BatchStatus;
  created_at: string;
  completed_at: string | null;
  canceled_at: string | null;
  /** `quality_flagged`: succeeded items whose cutout has automatic quality flags (they count as succeeded too). */
  counts: { total: number; queued: number; processing: number; succeeded: number; failed: number; canceled: number; rejected: number; quality_flagged: number };
  /** Reviewers' verdicts from the review page or the API: items flagged as wrong. */
  review: { rejected: number };
  upstream_calls: number;
  credits_saved: number;
  /** From the rate of the last ~100 items that ended; null until two have ended, or once all have. */
  eta: { remaining_ms: number; items_per_second: number; estimated_completion_at: string } | null;
  results_url: string;
  /** The batch whose flagged or failed items this batch runs again (`POST /v1/batches/:id/rerun`). */
  rerun_of: string | null;
  webhook_url: string | null;
  item_events: boolean;
}

/** `recentEnds`: end times in ms, newest first (BatchStore.recentEnds). */
export function toBatchView(batch: BatchRecord, { publicBaseUrl, recentEnds = [], now = Date.now() }: { publicBaseUrl: string; recentEnds?: number[]; now?: number }): BatchView {
  return {
    id: batch.id,
    object: 'batch',
    status: batch.status,
    created_at: batch.createdAt,
    completed_at: batch.completedAt ?? null,
    canceled_at: batch.canceledAt ?? null,
    counts: {
      total: batch.total, queued: batch.queued, processing: batch.processing, succeeded: batch.succeeded,
      failed: batch.failed, canceled: batch.canceled, rejected: batch.rejected, quality_flagged: batch.qualityFlagged,
    },
    review: { rejected: batch.reviewRejected },
    upstream_calls: batch.upstreamCalls,
    credits_saved: batch.creditsSaved,
    eta: estimate(batch, recentEnds, now),
    results_url: `${publicBaseUrl}/v1/batches/${batch.id}/results`,
    rerun_of: batch.rerunOf ?? null,
    webhook_url: batch.webhookUrl ?? null,
    item_events: batch.itemEvents,
  };
}

function estimate(batch: BatchRecord, recentEnds: number[], now: number): BatchView['eta'] {
  const remaining = batch.total - batch.ended;
  if (remaining <= 0 || batch.status !== 'processing' || recentEnds.length < 2) return null;
  const newest = recentEnds[0]!;
  const spanMs = Math.max(newest - recentEnds.at(-1)!, 1);
  const perMs = (recentEnds.length - 1) / spanMs;
  const remainingMs = Math.round(remaining / perMs);
  return { remaining_ms: remainingMs, items_per_second: Math.round(perMs * 1000 * 100) / 100, estimated_completion_at: new Date(now + remainingMs).toISOString() };
}
