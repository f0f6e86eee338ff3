import { runScript } from '../infra/scripts.ts';
import { randomBase62, sha256Hex } from '../infra/ids.ts';
import type { Redis } from '../infra/redis.ts';

/**
 * Admission to one webhook endpoint, shared by every worker through Redis, so a slow or
 * broken receiver holds at most a few delivery slots and never the whole `webhooks` queue.
 *
 * - **Leases**: at most `concurrency` deliveries in flight per endpoint. A lease is a member
 *   of a sorted set scored by its expiry (the delivery timeout plus a margin), so a worker
 *   that dies mid-delivery frees its place when the lease runs out, with no counter to leak.
 * - **Circuit**: `threshold` consecutive failures (timeouts, refused connections, 5xx) open
 *   it. While open, deliveries are not sent; when its cool-down ends, one delivery at a time
 *   goes through as a probe (it holds the probe mark and a lease). The first answer below
 *   500 closes it; a failed probe opens it again for the next, longer cool-down (the retry
 *   schedule).
 * - **Parked**: deliveries that were turned away wait in BullMQ's delayed set (safety-net
 *   timers) and are named in a sorted set, oldest first; whoever frees a place (a delivery
 *   settling, the circuit closing) takes as many names as there are free places, to wake them.
 *
 * Every step is one Lua script, timed by Redis's own clock, so workers on machines whose
 * clocks disagree agree on expiries. Durations returned are relative (ms from now).
 */

/** An endpoint is a tenant's receiver origin: capacity and health belong to the host, not to each URL on it. */
export function endpointIdOf(tenantId: string, url: string): string {
  let origin = url;
  try {
    origin = new URL(url).origin;
  } catch {
    // An unparsable URL is its own endpoint; the delivery itself reports it.
  }
  return `${tenantId}:${sha256Hex(origin).slice(0, 32)}`;
}

export type Admission =
  /** Send it; `token` settles the lease. `probe`: the circuit is half-open and this delivery tests it. */
  | { kind: 'send'; token: string; probe: boolean }
  /** Wait: every place is taken (`busy`) or the circuit is open (`failing`). `ahead`: deliveries parked before this one. */
  | { kind: 'wait'; reason: 'busy' | 'failing'; waitMs: number; ahead: number };

/** What an attempt said about the endpoint: it answered (any status below 500), it failed, or nothing was learnt. */
export type EndpointHealth = 'up' | 'down' | 'unknown';

export interface Settled {
  transition: 'opened' | 'reopened' | 'closed' | null;
  /** When the circuit is open: ms until a probe may go, and how many deliveries were parked before the retried one. */
  open: { forMs: number; ahead: number } | null;
  /** BullMQ ids of parked deliveries that may go now. */
  wake: string[];
}

export interface CircuitState {
  consecutiveFailures: number;
  /** Open: when a probe may go next (may be past, while waiting for one to be picked); null when closed. */
  openUntil: Date | null;
  openedAt: Date | null;
  probing: boolean;
  inFlight: number;
  parked: number;
}

export interface EndpointGate {
  admit(endpoint: string, jobId: string): Promise<Admission>;
  /** Releases the lease and records what the attempt showed; `retryJobId` parks a failed delivery on an open circuit. */
  settle(endpoint: string, token: string, health: EndpointHealth, retryJobId?: string): Promise<Settled>;
  /** After the delivery was moved to delayed: names it among the parked, or says `free` when a place opened meanwhile. */
  park(endpoint: string, jobId: string): Promise<'parked' | 'free'>;
  state(endpoints: readonly string[]): Promise<CircuitState[]>;
  /** An open circuit lets its next delivery probe now (the tenant says the endpoint is back); returns parked ids to wake. */
  probeNow(endpoint: string): Promise<string[]>;
  /** Endpoints whose circuit is open. */
  failingCount(): Promise<number>;
  readonly leaseTtlMs: number;
}

export interface GateSettings {
  concurrency: number;
  threshold: number;
  /** Cool-down after the n-th opening in a row (the last one repeats). */
  cooldownsMs: readonly number[];
  leaseTtlMs: number;
  /** How long circuit and parked keys outlive their last use. */
  keepMs: number;
}

/** Parked deliveries woken when a circuit opens at most; the rest keep their own timers. */
const MAX_WOKEN_ON_OPEN = 1000;

const NOW = `local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)`;

// KEYS: leases, circuit, parked. ARGV: token, jobId, concurrency, leaseTtl.
// A delivery turned away again keeps its place among the parked (its rank), a new one goes last.
const ADMIT = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ahead = redis.call('ZRANK', KEYS[3], ARGV[2]) or redis.call('ZCARD', KEYS[3])
local openUntil = tonumber(redis.call('HGET', KEYS[2], 'openUntil') or '0')
local probe = false
if openUntil > 0 then
  if now < openUntil then return {'failing', openUntil - now, ahead} end
  local probeUntil = tonumber(redis.call('HGET', KEYS[2], 'probeUntil') or '0')
  if probeUntil > now then return {'failing', probeUntil - now, ahead} end
  probe = true
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'busy', math.max(0, tonumber(first[2]) - now), ahead}
end
local ttl = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZREM', KEYS[3], ARGV[2])
if probe then
  redis.call('HSET', KEYS[2], 'probe', ARGV[1], 'probeUntil', now + ttl)
  return {'probe', 0, 0}
end
return {'send', 0, 0}
`;

// KEYS: leases, circuit, parked, failing set. ARGV: token, health, threshold, concurrency, keepMs, endpoint, retryJobId, cooldowns…
const SETTLE = `${NOW}
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local wasProbe = redis.call('HGET', KEYS[2], 'probe') == ARGV[1]
if wasProbe then redis.call('HDEL', KEYS[2], 'probe', 'probeUntil') end
local openUntil = tonumber(redis.call('HGET', KEYS[2], 'openUntil') or '0')
local cooldowns = #ARGV - 7
local function cooldown(trips) return tonumber(ARGV[7 + math.min(trips, cooldowns)]) end
local transition = ''
if ARGV[2] == 'up' then
  if openUntil > 0 then
    transition = 'closed'
    redis.call('ZREM', KEYS[4], ARGV[6])
  end
  redis.call('DEL', KEYS[2])
  openUntil = 0
elseif ARGV[2] == 'down' then
  local failures = redis.call('HINCRBY', KEYS[2], 'failures', 1)
  if openUntil > 0 then
    if wasProbe then
      local trips = redis.call('HINCRBY', KEYS[2], 'trips', 1)
      openUntil = now + cooldown(trips)
      redis.call('HSET', KEYS[2], 'openUntil', openUntil)
      redis.call('ZADD', KEYS[4], now, ARGV[6])
      transition = 'reopened'
    end
  elseif failures >= tonumber(ARGV[3]) then
    openUntil = now + cooldown(1)
    redis.call('HSET', KEYS[2], 'openUntil', openUntil, 'trips', 1, 'openedAt', now)
    redis.call('ZADD', KEYS[4], now, ARGV[6])
    transition = 'opened'
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
if openUntil > 0 then
  local ahead = 0
  if ARGV[7] ~= '' then
    redis.call('ZADD', KEYS[3], 'NX', now, ARGV[7])
    redis.call('PEXPIRE', KEYS[3], ARGV[5])
    ahead = redis.call('ZRANK', KEYS[3], ARGV[7])
  end
  local result = {transition, math.max(0, openUntil - now), ahead}
  -- Woken to be held again on the circuit's terms: on opening, every delivery that was
  -- waiting for a place (it then shows endpoint_failing and its probe time); after a failed
  -- probe, the first few, asleep until the probe's lease would have ended, so one of them
  -- makes the next probe on time.
  local woken = 0
  if transition == 'opened' then woken = ${MAX_WOKEN_ON_OPEN} elseif transition == 'reopened' then woken = tonumber(ARGV[4]) end
  if woken > 0 then
    for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, woken - 1)) do
      if id ~= ARGV[7] then table.insert(result, id) end
    end
  end
  return result
end
local result = {transition, -1, 0}
local free = tonumber(ARGV[4]) - redis.call('ZCARD', KEYS[1])
if free > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[3], free)
  for i = 1, #popped, 2 do table.insert(result, popped[i]) end
end
return result
`;

// KEYS: leases, circuit, parked. ARGV: jobId, concurrency, keepMs.
const PARK = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local openUntil = tonumber(redis.call('HGET', KEYS[2], 'openUntil') or '0')
local passable = openUntil == 0 or (now >= openUntil and tonumber(redis.call('HGET', KEYS[2], 'probeUntil') or '0') <= now)
if passable and redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[3], 'NX', now, ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
`;

// KEYS: circuit, parked. Moves an open circuit's next probe to now and names one parked delivery to make it.
const PROBE_NOW = `${NOW}
if tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0') == 0 then return {} end
redis.call('HSET', KEYS[1], 'openUntil', now)
local popped = redis.call('ZPOPMIN', KEYS[2], 1)
if #popped == 0 then return {} end
return {popped[1]}
`;

export function makeEndpointGate({
  redis,
  prefix,
  settings,
}: {
  redis: Redis;
  prefix: string;
  settings: GateSettings;
}): EndpointGate {
  const keys = (endpoint: string) => {
    const base = `${prefix}:webhook-endpoint:${endpoint}`;
    return { leases: `${base}:leases`, circuit: `${base}:circuit`, parked: `${base}:parked` };
  };
  const failingKey = `${prefix}:webhook-endpoints:failing`;
  const cooldowns = settings.cooldownsMs.length > 0 ? settings.cooldownsMs : [0];

  return {
    async admit(endpoint, jobId) {
      const { leases, circuit, parked } = keys(endpoint);
      const token = randomBase62(16);
      const [kind, waitMs, ahead] = (await runScript(
        redis,
        ADMIT,
        3,
        leases,
        circuit,
        parked,
        token,
        jobId,
        String(settings.concurrency),
        String(settings.leaseTtlMs),
      )) as [string, number, number];
      if (kind === 'send' || kind === 'probe') return { kind: 'send', token, probe: kind === 'probe' };
      return { kind: 'wait', reason: kind as 'busy' | 'failing', waitMs: Number(waitMs), ahead: Number(ahead) };
    },
    async settle(endpoint, token, health, retryJobId = '') {
      const { leases, circuit, parked } = keys(endpoint);
      const [transition, openForMs, ahead, ...wake] = (await runScript(
        redis,
        SETTLE,
        4,
        leases,
        circuit,
        parked,
        failingKey,
        token,
        health,
        String(settings.threshold),
        String(settings.concurrency),
        String(settings.keepMs),
        endpoint,
        retryJobId,
        ...cooldowns.map(String),
      )) as [string, number, number, ...string[]];
      return {
        transition: (transition || null) as Settled['transition'],
        open: Number(openForMs) >= 0 ? { forMs: Number(openForMs), ahead: Number(ahead) } : null,
        wake,
      };
    },
    async park(endpoint, jobId) {
      const { leases, circuit, parked } = keys(endpoint);
      const result = await runScript(
        redis,
        PARK,
        3,
        leases,
        circuit,
        parked,
        jobId,
        String(settings.concurrency),
        String(settings.keepMs),
      );
      return Number(result) === 1 ? 'parked' : 'free';
    },
    async state(endpoints) {
      const now = Date.now();
      const pipeline = redis.pipeline();
      for (const endpoint of endpoints) {
        const { leases, circuit, parked } = keys(endpoint);
        pipeline.hgetall(circuit).zcount(leases, now, '+inf').zcard(parked);
      }
      const replies = (await pipeline.exec()) ?? [];
      return endpoints.map((_, index) => {
        const [circuitReply, inFlight, parked] = replies.slice(index * 3, index * 3 + 3).map(([error, value]) => {
          if (error) throw error;
          return value;
        });
        const circuit = circuitReply as Record<string, string>;
        const openUntil = Number(circuit.openUntil ?? 0);
        return {
          consecutiveFailures: Number(circuit.failures ?? 0),
          openUntil: openUntil > 0 ? new Date(openUntil) : null,
          openedAt: circuit.openedAt ? new Date(Number(circuit.openedAt)) : null,
          probing: Number(circuit.probeUntil ?? 0) > now,
          inFlight: Number(inFlight),
          parked: Number(parked),
        };
      });
    },
    async probeNow(endpoint) {
      const { circuit, parked } = keys(endpoint);
      return (await runScript(redis, PROBE_NOW, 2, circuit, parked)) as string[];
    },
    async failingCount() {
      // An endpoint that went quiet while open leaves its entry; it stops counting once its circuit key could have expired.
      return Number(await redis.zcount(failingKey, Date.now() - settings.keepMs, '+inf'));
    },
    leaseTtlMs: settings.leaseTtlMs,
  };
}
