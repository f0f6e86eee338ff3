import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';

export interface CommandCount {
  /** Commands sent by clients that named a key of the prefix (a script is one command). */
  total: number;
  /** Commands run inside those scripts (MONITOR shows them with the source `lua`), not in `total`. */
  insideScripts: number;
  /** By command and the shape of its first key, e.g. `EVAL job:*` or `HGETALL bull:remove-bg:*`. */
  byCommand: Record<string, number>;
  /** By process (the `processes` given, by pid), from the connections' owners (`ss -tnp`); `other` for the rest. */
  byProcess: Record<string, number>;
}

/** Which pid owns each local TCP address (`127.0.0.1:port`), for the sockets this user may see. */
function socketOwners(): Map<string, number> {
  const owners = new Map<string, number>();
  try {
    for (const line of execFileSync('ss', ['-tnpH'], { encoding: 'utf8' }).split('\n')) {
      const fields = line.trim().split(/\s+/);
      const pid = /pid=(\d+)/.exec(line)?.[1];
      if (fields[3] && pid) owners.set(fields[3], Number(pid));
    }
  } catch {
    // no ss: every command counts as `other`
  }
  return owners;
}

/** A key with the prefix cut off and its ids (long or numeric segments) replaced by `*`. */
const keyShape = (key: string, prefix: string): string =>
  key
    .slice(prefix.length + 1)
    .split(':')
    .map((part) => (/^\d+$/.test(part) || part.length >= 16 ? '*' : part))
    .join(':');

/** The first key of a command, as far as it can be told from its arguments. */
function firstKey(command: string, args: string[]): string | undefined {
  if (command === 'eval' || command === 'evalsha') return Number(args[1]) > 0 ? args[2] : undefined;
  return args[0];
}

/**
 * Counts the Redis commands about keys of `prefix` while `task` runs, by MONITOR on a
 * connection of its own. MONITOR slows Redis down (every command is copied to the monitor),
 * so this runs as a pass of its own, never while a rate is measured. Commands named only by
 * channel or without a key of the prefix (PING, INFO, SUBSCRIBE) are not counted; commands
 * pipelined together (ioredis' autopipelining, MULTI) count one each, though they share a
 * round trip.
 */
export async function countRedisCommands<T>(
  redisUrl: string,
  prefix: string,
  task: () => Promise<T>,
  processes: Record<string, readonly number[]> = {},
): Promise<{ result: T; count: CommandCount }> {
  const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  const monitor = await client.monitor();
  const count: CommandCount = { total: 0, insideScripts: 0, byCommand: {}, byProcess: {} };
  const bySource = new Map<string, number>();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const [name, ...rest] = args;
    if (!name || !rest.some((arg) => arg.startsWith(`${prefix}:`))) return;
    if (source === 'lua') {
      count.insideScripts += 1;
      return;
    }
    const command = name.toLowerCase();
    const key = firstKey(command, rest);
    const label = `${command.toUpperCase()}${key?.startsWith(`${prefix}:`) ? ` ${keyShape(key, prefix)}` : ''}`;
    count.total += 1;
    count.byCommand[label] = (count.byCommand[label] ?? 0) + 1;
    bySource.set(source, (bySource.get(source) ?? 0) + 1);
  });
  try {
    const result = await task();
    // The monitor's copy of the last commands may still be on its way.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const owners = socketOwners();
    const nameOf = new Map(
      Object.entries(processes).flatMap(([name, pids]) => pids.map((pid) => [pid, name] as const)),
    );
    for (const [source, n] of bySource) {
      const name = nameOf.get(owners.get(source) ?? -1) ?? 'other';
      count.byProcess[name] = (count.byProcess[name] ?? 0) + n;
    }
    return { result, count };
  } finally {
    monitor.disconnect();
    client.disconnect();
  }
}

/** Counts divided by `per` (requests, images), rounded to two decimals, largest first. */
export function perUnit(count: CommandCount, per: number): CommandCount {
  const round = (value: number) => Math.round((value / per) * 100) / 100;
  const divided = (counts: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(counts)
        .sort(([, a], [, b]) => b - a)
        .map(([label, n]) => [label, round(n)] as const),
    );
  return {
    total: round(count.total),
    insideScripts: round(count.insideScripts),
    byCommand: divided(count.byCommand),
    byProcess: divided(count.byProcess),
  };
}
