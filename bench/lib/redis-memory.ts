import type { Redis } from 'ioredis';

/** Key groups by what they hold (the same grouping as scripts/measure-redis-memory.ts). */
const GROUPS: [RegExp, string][] = [
  [/:job:[^:]+:webhook-attempts$/, 'webhook attempt log'],
  [/:job:[^:]+$/, 'job record'],
  [/:bull:/, 'BullMQ'],
  [/:dedup:/, 'duplicate-image claim'],
  [/:tenant:[^:]+:jobs$/, 'tenant job index'],
];

/** Bytes (`MEMORY USAGE … SAMPLES 0`) of every key under `prefix:`, by group. */
export async function redisBytesByGroup(redis: Redis, prefix: string): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  let cursor = '0';
  let rounds = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    const answers = (await pipeline.exec()) ?? [];
    keys.forEach((key, index) => {
      const group = GROUPS.find(([pattern]) => pattern.test(key))?.[1] ?? 'other';
      totals[group] = (totals[group] ?? 0) + Number(answers[index]?.[1] ?? 0);
    });
    cursor = next;
    rounds += 1;
  } while (cursor !== '0' && rounds < 100_000);
  return totals;
}
