import { asCluster, type Redis } from '@cutout/shared/infra';

/**
 * Deletes every key under `prefix:` with SCAN + UNLINK — never FLUSHALL, the Redis is
 * shared by everything on the machine. On a Redis Cluster it walks each master.
 */
export async function unlinkPrefix(redis: Redis, prefix: string): Promise<void> {
  for (const node of asCluster(redis)?.nodes('master') ?? [redis]) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      if (keys.length > 0) await node.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
}
