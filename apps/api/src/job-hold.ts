import { sha256Hex, type JobRecord, type UpstreamState, type WaitingReason } from '@cutout/shared';

/** Why every queued job waits right now, if the workers hold the whole queue (both reads in one round trip). */
export async function queueHold(upstream: UpstreamState): Promise<WaitingReason | null> {
  const [keyProblem, pauseMs] = await Promise.all([upstream.keyProblem(), upstream.pauseRemainingMs()]);
  if (keyProblem) return 'upstream_unauthorized';
  if (pauseMs > 0) return 'upstream_rate_limited';
  return null;
}

/**
 * A validator for cheap polling: it changes whenever anything a client sees changes,
 * but not with the presigned URL, which is fresh on every response.
 */
export const jobEtag = (record: JobRecord, held: string | null): string => `W/"${sha256Hex(`${JSON.stringify(record)}|${held ?? ''}`).slice(0, 24)}"`;
