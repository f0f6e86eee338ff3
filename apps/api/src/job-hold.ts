import { holdReasonOf, sha256Hex, type Budgets, type JobRecord, type UpstreamState, type WaitingReason } from '@cutout/shared';

/**
 * Why every queued job of the tenant waits right now: the workers hold the whole queue (every
 * key refused, no credit, a 429 pause), or the tenant's budget of upstream calls is used up.
 * The reads go out together, in one round trip.
 */
export async function queueHold({ upstream, budgets }: { upstream: UpstreamState; budgets: Pick<Budgets, 'room'> }, tenantId: string): Promise<WaitingReason | null> {
  const [holds, pauseMs, room] = await Promise.all([upstream.holds(), upstream.pauseRemainingMs(), budgets.room(tenantId)]);
  return holdReasonOf(holds, room, pauseMs);
}

/**
 * A validator for cheap polling: it changes whenever anything a client sees changes,
 * but not with the presigned URL, which is fresh on every response.
 */
export const jobEtag = (record: JobRecord, held: string | null): string => `W/"${sha256Hex(`${JSON.stringify(record)}|${held ?? ''}`).slice(0, 24)}"`;
