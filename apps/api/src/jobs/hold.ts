import { holdReasonOf, type Budgets, type UpstreamState } from '@cutout/shared/stores';
import type { WaitingReason } from '@cutout/shared/views';

/**
 * Why every queued job of the tenant waits right now: the workers hold the whole queue (every
 * key refused, no credit, a 429 pause), or the tenant's budget of upstream calls is used up.
 * The reads go out together, in one round trip.
 */
export async function queueHold(
  { upstream, budgets }: { upstream: UpstreamState; budgets: Pick<Budgets, 'room'> },
  tenantId: string,
): Promise<WaitingReason | null> {
  const [holds, pauseMs, room] = await Promise.all([
    upstream.holds(),
    upstream.pauseRemainingMs(),
    budgets.room(tenantId),
  ]);
  return holdReasonOf(holds, room, pauseMs);
}
