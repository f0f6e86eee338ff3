/** What a batch is, as batch-store and batch-creation both read and write it. */
import { randomBase62 } from '../infra/ids.ts';
import type { RenditionPlan } from '../renditions/spec.ts';
import type { BatchStatus, TerminalStatus } from '../views/job-codes.ts';

/** Counters move with their items' transitions (job-store's TRANSITION script), never by scanning. */
interface BatchCounts {
  total: number;
  queued: number;
  processing: number;
  succeeded: number;
  failed: number;
  canceled: number;
  rejected: number;
}

export interface BatchRecord extends BatchCounts {
  id: string;
  tenantId: string;
  status: BatchStatus;
  createdAt: string;
  completedAt?: string;
  canceledAt?: string;
  /** Items that reached a terminal status; the batch completes when it reaches `total`. */
  ended: number;
  upstreamCalls: number;
  creditsSaved: number;
  webhookUrl?: string;
  /** Whether items send their own job.* events besides batch.completed. */
  itemEvents: boolean;
  /** Items a reviewer flagged as wrong (`review: rejected`). */
  reviewRejected: number;
  /** The batch whose flagged or failed items this batch runs again. */
  rerunOf?: string;
  /** Items whose cutout has quality flags (TRANSITION counts them as they succeed). */
  qualityFlagged: number;
  /** The names of the renditions every item makes, in order: the manifest's columns. */
  renditionNames?: string[];
  /** Settings every item takes from its batch (job-store merges them into each item's record). */
  options?: Record<string, string>;
  renditionPlans?: RenditionPlan[];
  /** Items handed to the queue so far, in submission order (batch-feeder.ts). */
  fed: number;
}

/** The final statuses whose items a batch lists in the order they ended. */
export type EndedStatus = TerminalStatus;

/** Opaque, unguessable batch id: 24 base62 characters. */
export const newBatchId = (): string => `batch_${randomBase62(24)}`;
