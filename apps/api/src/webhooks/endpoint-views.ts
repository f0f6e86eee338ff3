import { endpointIdOf, type CircuitState } from '@cutout/shared/stores';
import { decodeOffsetCursor, encodeOffsetCursor } from '../http/cursor.ts';
import { notFound } from '../http/errors.ts';
import type { RedeliveryDeps } from './redelivery.ts';

export type EndpointDeps = Pick<RedeliveryDeps, 'deliveries' | 'goneEndpoints' | 'gate' | 'outbox'>;

interface KnownEndpoint {
  url: string;
  lastAttemptAt?: string;
  disabledAt?: string;
}

/**
 * One URL the tenant's webhooks go to. `state`: `disabled` (it answered 410; nothing is sent
 * to it until enabled), `failing` (its origin's circuit is open: deliveries wait for the next
 * probe), else `enabled`. The circuit belongs to the origin, so URLs on one host share it.
 */
function toEndpointView({ url, lastAttemptAt, disabledAt }: KnownEndpoint, circuit: CircuitState) {
  return {
    object: 'webhook_endpoint' as const,
    url,
    state: disabledAt ? ('disabled' as const) : circuit.openUntil ? ('failing' as const) : ('enabled' as const),
    disabled_at: disabledAt ?? null,
    consecutive_failures: circuit.consecutiveFailures,
    failing_since: circuit.openedAt?.toISOString() ?? null,
    next_probe_at: circuit.openUntil?.toISOString() ?? null,
    in_flight: circuit.inFlight,
    waiting: circuit.parked,
    last_attempt_at: lastAttemptAt ?? null,
  };
}

/** Every URL used recently or disabled, most recent activity first. */
async function knownEndpoints({ deliveries, goneEndpoints }: EndpointDeps, tenantId: string): Promise<KnownEndpoint[]> {
  const [used, gone] = await Promise.all([deliveries.endpoints(tenantId), goneEndpoints.listGone(tenantId)]);
  const known = new Map<string, KnownEndpoint>();
  for (const { url, lastAttemptAt } of used) known.set(url, { url, lastAttemptAt });
  for (const { url, since } of gone) known.set(url, { ...known.get(url), url, disabledAt: since });
  const latest = (endpoint: KnownEndpoint) =>
    Math.max(Date.parse(endpoint.lastAttemptAt ?? '0'), Date.parse(endpoint.disabledAt ?? '0'));
  return [...known.values()].sort((a, b) => latest(b) - latest(a));
}

async function views(deps: EndpointDeps, tenantId: string, endpoints: KnownEndpoint[]) {
  const circuits = await deps.gate.state(endpoints.map(({ url }) => endpointIdOf(tenantId, url)));
  return endpoints.map((endpoint, i) => toEndpointView(endpoint, circuits[i]!));
}

export async function endpointPage(
  deps: EndpointDeps,
  tenantId: string,
  { limit: size, cursor }: { limit: number; cursor?: string },
) {
  const offset = decodeOffsetCursor(cursor);
  const known = await knownEndpoints(deps, tenantId);
  const page = known.slice(offset, offset + size);
  return {
    data: await views(deps, tenantId, page),
    next_cursor: offset + size < known.length ? encodeOffsetCursor(offset + size) : null,
  };
}

/**
 * Enables a URL the tenant's deliveries went to: a 410 mark is lifted and, if its origin's
 * circuit is open, the next delivery probes now. 404 for a URL this tenant never used.
 * `url` is the checked, normalised URL (the operation's schema).
 */
export async function enableEndpoint(deps: EndpointDeps, tenantId: string, url: string) {
  const wasDisabled = await deps.goneEndpoints.enable(tenantId, url);
  const used = (await deps.deliveries.endpoints(tenantId)).find((endpoint) => endpoint.url === url);
  if (!wasDisabled && !used) throw notFound('Webhook endpoint');
  await deps.outbox.wake(await deps.gate.probeNow(endpointIdOf(tenantId, url)));
  const [view] = await views(deps, tenantId, [{ url, lastAttemptAt: used?.lastAttemptAt }]);
  return view!;
}
