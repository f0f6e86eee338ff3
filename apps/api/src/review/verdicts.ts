import type { Redis } from '@cutout/shared/infra';
import { fingerprintOf, forgetReusableResult, type JobRecord, type Reviews } from '@cutout/shared/stores';
import { ApiError } from '../http/errors.ts';

export interface VerdictDeps {
  reviews: Reviews;
  redis: Redis;
  prefix: string;
}

const MAX_NOTE = 500;

/** `{ "verdict": "rejected", "note": "…" }` from a request body; 400 otherwise. */
export function parseVerdict(body: unknown): { note?: string } {
  const { verdict, note } = (body && typeof body === 'object' ? body : {}) as { verdict?: unknown; note?: unknown };
  if (verdict !== 'rejected')
    throw new ApiError('invalid_request', 'verdict must be "rejected" (DELETE clears a verdict)');
  if (note !== undefined && note !== null && (typeof note !== 'string' || note.length > MAX_NOTE)) {
    throw new ApiError('invalid_request', `note must be a string of at most ${MAX_NOTE} characters`);
  }
  return typeof note === 'string' && note.trim() ? { note: note.trim() } : {};
}

/**
 * Flags a succeeded job's cutout as wrong (or clears the flag). A rejected result is also
 * dropped from duplicate detection, so the same image submitted again (or rerun with the
 * same options) goes back to ByByBG instead of reusing the result a reviewer turned down.
 */
export async function recordVerdict(
  deps: VerdictDeps,
  record: JobRecord,
  verdict: { note?: string } | null,
): Promise<JobRecord> {
  if (record.status !== 'succeeded') {
    throw new ApiError('not_reviewable', `Only a succeeded job's cutout can be flagged; this job is ${record.status}`);
  }
  const updated = await deps.reviews.set(
    record,
    verdict ? { verdict: 'rejected', ...verdict, reviewedAt: new Date().toISOString() } : null,
  );
  if (!updated) throw new ApiError('not_found', 'Job not found');
  if (verdict && record.originalSha256)
    await forgetReusableResult(
      deps.redis,
      deps.prefix,
      fingerprintOf(record.tenantId, record.originalSha256, record.options),
    );
  return updated;
}
