import type { BatchRecord, BatchStore, JobRecord } from '@cutout/shared/stores';
import {
  QUALITY_FLAG_TEXT,
  reviewView,
  toBatchView,
  type JobStatus,
  type JobView,
  type QualityFlag,
} from '@cutout/shared/views';

/** A job as the review page shows it: thumbnails and downloads go through the review link, never to S3 directly. */
export interface ReviewItem {
  id: string;
  client_ref: string | null;
  status: JobStatus;
  error: { code: string; message: string } | null;
  review: JobView['review'];
  original_thumb_url: string | null;
  cutout_thumb_url: string | null;
  result_url: string | null;
  /** The automatic checks' flags of a succeeded job, each with its words. */
  quality_flags: { flag: QualityFlag; text: string }[];
  /** Each rendition of a succeeded job: a download through the link, or why it could not be made. */
  renditions: { name: string; url: string | null; error: string | null }[];
  finished_at: string | null;
}

export const reviewBase = (token: string): string => `/review/${token}`;

export function toReviewItem(token: string, record: JobRecord): ReviewItem {
  const item = `${reviewBase(token)}/items/${record.id}`;
  const succeeded = record.status === 'succeeded';
  return {
    id: record.id,
    client_ref: record.clientRef ?? null,
    status: record.status,
    error: record.error ? { code: record.error.code, message: record.error.message } : null,
    review: reviewView(record),
    original_thumb_url: record.originalThumbKey ? `${item}/thumbs/original` : null,
    cutout_thumb_url: succeeded && record.resultThumbKey ? `${item}/thumbs/cutout` : null,
    result_url: succeeded && record.resultKey ? `${item}/result` : null,
    quality_flags: succeeded
      ? (record.quality?.flags ?? []).map((flag) => ({ flag, text: QUALITY_FLAG_TEXT[flag] }))
      : [],
    renditions: succeeded
      ? Object.entries(record.renditions ?? {}).map(([name, stored]) =>
          'error' in stored
            ? { name, url: null, error: stored.error }
            : { name, url: `${item}/renditions/${name}`, error: null },
        )
      : [],
    finished_at: record.finishedAt ?? null,
  };
}

/** A batch's progress as the page's header and its event stream show it. */
export interface ReviewProgress {
  id: string;
  status: BatchRecord['status'];
  counts: {
    total: number;
    queued: number;
    processing: number;
    succeeded: number;
    failed: number;
    canceled: number;
    quality_flagged: number;
  };
  review: { rejected: number };
  eta: ReturnType<typeof toBatchView>['eta'];
  created_at: string;
  completed_at: string | null;
}

export async function reviewProgress(batches: BatchStore, batch: BatchRecord): Promise<ReviewProgress> {
  const view = toBatchView(batch, { publicBaseUrl: '', recentEnds: await batches.recentEnds(batch.id) });
  const { total, queued, processing, succeeded, failed, canceled, quality_flagged } = view.counts;
  return {
    id: view.id,
    status: view.status,
    counts: { total, queued, processing, succeeded, failed, canceled, quality_flagged },
    review: view.review,
    eta: view.eta,
    created_at: view.created_at,
    completed_at: view.completed_at,
  };
}
