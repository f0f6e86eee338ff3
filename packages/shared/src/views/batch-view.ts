import { z } from 'zod';
import { BATCH_STATUSES } from './job-codes.ts';
import type { BatchRecord } from '../stores/batch-record.ts';

const timestamp = z.iso.datetime();
const count = z.int().min(0);

/** A batch as clients see it: `GET /v1/batches/:id` and the `data` of `batch.completed`. */
export const batchViewSchema = z
  .object({
    id: z.string().meta({ example: 'batch_7Qm2Xw9Lr4Tz1Vb8Kc3Np6Hs' }),
    object: z.literal('batch'),
    status: z.enum(BATCH_STATUSES),
    created_at: timestamp,
    completed_at: timestamp.nullable(),
    canceled_at: timestamp.nullable(),
    counts: z.object({
      total: count,
      queued: count,
      processing: count,
      succeeded: count,
      failed: count,
      canceled: count,
      rejected: count,
      quality_flagged: count.describe(
        'Succeeded items whose cutout has automatic quality flags (counted as succeeded too)',
      ),
    }),
    review: z.object({ rejected: count }).describe('Items a reviewer flagged as wrong'),
    upstream_calls: count.describe('Requests the items made to ByByBG'),
    credits_saved: count.describe('Items whose result was reused from an identical image'),
    eta: z
      .object({ remaining_ms: count, items_per_second: z.number(), estimated_completion_at: timestamp })
      .nullable()
      .describe('From the rate of the last ~100 items that ended; null until two have ended, or once all have'),
    results_url: z.string().describe('The results manifest (JSON lines or CSV)'),
    rerun_of: z.string().nullable().describe('The batch whose flagged or failed items this batch runs again'),
    webhook_url: z.string().nullable(),
    item_events: z.boolean().describe('Whether each item sends its own job.succeeded / job.failed'),
  })
  .meta({ id: 'Batch', description: 'A batch of images: its status, counts and what it cost' });

export type BatchView = z.output<typeof batchViewSchema>;

/** `recentEnds`: end times in ms, newest first (BatchStore.recentEnds). */
export function toBatchView(
  batch: BatchRecord,
  { publicBaseUrl, recentEnds = [], now = Date.now() }: { publicBaseUrl: string; recentEnds?: number[]; now?: number },
): BatchView {
  return {
    id: batch.id,
    object: 'batch',
    status: batch.status,
    created_at: batch.createdAt,
    completed_at: batch.completedAt ?? null,
    canceled_at: batch.canceledAt ?? null,
    counts: {
      total: batch.total,
      queued: batch.queued,
      processing: batch.processing,
      succeeded: batch.succeeded,
      failed: batch.failed,
      canceled: batch.canceled,
      rejected: batch.rejected,
      quality_flagged: batch.qualityFlagged,
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
  return {
    remaining_ms: remainingMs,
    items_per_second: Math.round(perMs * 1000 * 100) / 100,
    estimated_completion_at: new Date(now + remainingMs).toISOString(),
  };
}
