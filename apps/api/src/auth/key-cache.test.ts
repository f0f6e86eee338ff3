import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedis } from '@cutout/shared/infra';
import { apiKeyRevocationChannel, makeApiKeyStore, type ApiKeyStore } from './api-keys.ts';
import { testRedis, uniquePrefix, type TestRedis } from '../../../../test/helpers/services.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';
import { makeApiKeyCache, type ApiKeyCache } from './key-cache.ts';
import { eventually } from '../../../../test/helpers/webhooks.ts';

describe('the API key cache', () => {
  let server: TestRedis;
  let redis: Redis;
  let store: ApiKeyStore;
  let cache: ApiKeyCache;
  let lookups = 0;
  const prefix = uniquePrefix();

  beforeAll(async () => {
    server = await testRedis();
    redis = new Redis(server.url);
    store = makeApiKeyStore({ redis, prefix });
    const counting = {
      authenticate: (key: string) => {
        lookups += 1;
        return store.authenticate(key);
      },
    };
    cache = makeApiKeyCache({
      apiKeys: counting,
      subscriber: createRedis(server.url),
      channel: apiKeyRevocationChannel(prefix),
      ttlMs: 60_000,
    });
  });
  afterAll(async () => {
    await cache.close();
    await unlinkPrefix(redis, prefix);
    redis.disconnect();
    await server.close();
  });

  /** Until the revocation channel is subscribed nothing is kept: wait for the first kept lookup. */
  const cached = (key: string) =>
    eventually(
      async () => {
        await cache.authenticate(key);
        const before = lookups;
        await cache.authenticate(key);
        return lookups === before ? true : undefined;
      },
      { describe: 'the key cached' },
    );

  it('looks a key up once, then answers from memory', async () => {
    const { key, record } = await store.create({ tenantId: 'acme' });
    await cached(key);
    const before = lookups;
    for (let i = 0; i < 5; i++) expect((await cache.authenticate(key))?.id).toBe(record.id);
    expect(lookups).toBe(before);
  });

  it('drops a key as soon as it is revoked, in this and every other process', async () => {
    const { key } = await store.create({ tenantId: 'acme' });
    await cached(key);
    await store.revoke(key);
    const seen = await eventually(
      async () => {
        const record = await cache.authenticate(key);
        return record?.revokedAt ? record : undefined;
      },
      { timeoutMs: 2_000, describe: 'the revocation seen' },
    );
    expect(seen.revokedAt).toEqual(expect.any(String));
  });

  it('does not remember keys that do not exist', async () => {
    const before = lookups;
    await cache.authenticate('ck_live_doesnotexistdoesnotexistdoesnot');
    await cache.authenticate('ck_live_doesnotexistdoesnotexistdoesnot');
    expect(lookups - before).toBe(2);
  });
});
