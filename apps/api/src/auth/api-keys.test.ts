import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32, generateApiKey, isWellFormedApiKey, makeApiKeyStore, type ApiKeyStore } from './api-keys.ts';
import { sha256Hex } from '../../../../packages/shared/src/infra/ids.ts';
import { ConfigError, loadConfig } from '../../../../packages/shared/src/infra/config.ts';
import { createRedis, type Redis } from '../../../../packages/shared/src/infra/redis.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

let redis: Redis;
let store: ApiKeyStore;

beforeAll(async () => {
  redis = createRedis(REDIS_URL);
  await redis.connect();
  store = makeApiKeyStore({ redis, prefix });
});

afterAll(async () => {
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

const newTenant = () => `tenant-${randomBytes(4).toString('hex')}`;
const operatorKey = () => `op-${randomBytes(18).toString('base64url')}`;

describe('key format', () => {
  it('is ck_live_, 32 random base62 characters and a 6-character checksum', () => {
    for (let i = 0; i < 200; i += 1) {
      const key = generateApiKey();
      expect(key).toMatch(/^ck_live_[0-9A-Za-z]{38}$/);
      expect(isWellFormedApiKey(key)).toBe(true);
    }
    expect(new Set(Array.from({ length: 1_000 }, generateApiKey)).size).toBe(1_000);
  });

  it('computes the standard CRC-32', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    expect(crc32('')).toBe(0);
  });

  it('refuses every single-character typo, in the random part and in the checksum', () => {
    const key = generateApiKey();
    for (let position = 'ck_live_'.length; position < key.length; position += 1) {
      for (const replacement of BASE62) {
        if (replacement === key[position]) continue;
        const typo = `${key.slice(0, position)}${replacement}${key.slice(position + 1)}`;
        expect(isWellFormedApiKey(typo), typo).toBe(false);
      }
    }
  });

  it('refuses swapped neighbours, a missing or an extra character', () => {
    const key = generateApiKey();
    const swaps = Array.from({ length: key.length - 9 }, (_, i) => i + 8)
      .filter((i) => key[i] !== key[i + 1])
      .map((i) => `${key.slice(0, i)}${key[i + 1]}${key[i]}${key.slice(i + 2)}`);
    for (const bad of [...swaps, key.slice(0, -1), key.slice(0, 20) + key.slice(21), `${key}A`])
      expect(isWellFormedApiKey(bad), bad).toBe(false);
  });

  it('accepts operator keys of 24 characters or more as given, and nothing shorter', () => {
    expect(isWellFormedApiKey('x'.repeat(24))).toBe(true);
    expect(isWellFormedApiKey('ck_dev_0123456789abcdefghijklmnopqrstuvw')).toBe(true);
    expect(isWellFormedApiKey('x'.repeat(23))).toBe(false);
    expect(isWellFormedApiKey('')).toBe(false);
  });

  it('refuses a malformed key without asking Redis', async () => {
    const offline = makeApiKeyStore({ redis: createRedis('redis://127.0.0.1:1'), prefix });
    const key = generateApiKey();
    const typo = `${key.slice(0, 10)}${key[10] === 'a' ? 'b' : 'a'}${key.slice(11)}`;

    // An unreachable Redis would make a lookup throw; a malformed key never gets that far.
    await expect(offline.authenticate(typo)).resolves.toBeNull();
    await expect(offline.authenticate('short')).resolves.toBeNull();
  });
});

describe('create and authenticate', () => {
  it('authenticates a created key as its tenant, with every scope by default', async () => {
    const tenantId = newTenant();
    const { key, record } = await store.create({ tenantId, name: 'ci' });

    expect(record).toEqual({
      id: expect.stringMatching(/^key_[0-9A-Za-z]{16}$/),
      tenantId,
      scopes: ['jobs:read', 'jobs:write'],
      createdAt: expect.any(String),
      name: 'ci',
      prefix: key.slice(0, 12),
    });
    expect(await store.authenticate(key)).toEqual(record);
  });

  it('keeps the scopes asked for', async () => {
    const { key } = await store.create({ tenantId: newTenant(), scopes: ['jobs:read'] });

    expect((await store.authenticate(key))?.scopes).toEqual(['jobs:read']);
  });

  it('returns null for a well-formed key it never issued', async () => {
    expect(await store.authenticate(generateApiKey())).toBeNull();
    expect(await store.authenticate(operatorKey())).toBeNull();
  });

  it('stores only the hash of the key', async () => {
    const { key } = await store.create({ tenantId: newTenant() });
    const dump = JSON.stringify(await redis.hgetall(`${prefix}:apikeys`));

    expect(dump).not.toContain(key);
    expect(dump).toContain(sha256Hex(key));
  });

  it('refuses a bad tenant id, an unknown scope or no scope', async () => {
    await expect(store.create({ tenantId: 'has space' })).rejects.toThrow(RangeError);
    await expect(store.create({ tenantId: newTenant(), scopes: ['admin' as 'jobs:read'] })).rejects.toThrow(RangeError);
    await expect(store.create({ tenantId: newTenant(), scopes: [] })).rejects.toThrow(RangeError);
  });

  it('gives a tenant as many keys as it asks for, each working on its own', async () => {
    const tenantId = newTenant();
    const created = await Promise.all([1, 2, 3].map((n) => store.create({ tenantId, name: `key ${n}` })));

    for (const { key, record } of created) expect((await store.authenticate(key))?.id).toBe(record.id);
    expect((await store.list(tenantId)).map((record) => record.id).sort()).toEqual(
      created.map(({ record }) => record.id).sort(),
    );
  });
});

describe('list', () => {
  it('shows a tenant its keys, oldest first, never the key or its hash', async () => {
    const tenantId = newTenant();
    const first = await store.create({ tenantId, name: 'first' });
    const second = await store.create({ tenantId, scopes: ['jobs:read'] });
    await store.create({ tenantId: newTenant() });

    const listed = await store.list(tenantId);

    expect(listed).toHaveLength(2);
    expect(listed).toEqual(expect.arrayContaining([first.record, second.record]));
    expect(listed[0]!.createdAt <= listed[1]!.createdAt).toBe(true);
    const text = JSON.stringify(listed);
    for (const { key } of [first, second]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(sha256Hex(key));
    }
  });

  it('shows every tenant without a tenant id', async () => {
    const a = await store.create({ tenantId: newTenant() });
    const b = await store.create({ tenantId: newTenant() });

    const ids = (await store.list()).map((record) => record.id);

    expect(ids).toEqual(expect.arrayContaining([a.record.id, b.record.id]));
  });

  it('is empty for a tenant without keys', async () => {
    expect(await store.list(newTenant())).toEqual([]);
  });
});

describe('revoke', () => {
  it('marks the key revoked by id; authenticate still finds it, so the API can say so', async () => {
    const { key, record } = await store.create({ tenantId: newTenant() });

    const revoked = await store.revoke(record.id);

    expect(revoked).toEqual({ ...record, revokedAt: expect.any(String) });
    expect(await store.authenticate(key)).toEqual(revoked);
  });

  it('revokes by the key itself, and keeps the first date when revoked again', async () => {
    const { key, record } = await store.create({ tenantId: newTenant() });

    const first = await store.revoke(key);
    const again = await store.revoke(record.id);

    expect(first?.revokedAt).toBeDefined();
    expect(again?.revokedAt).toBe(first?.revokedAt);
  });

  it("leaves the tenant's other keys working", async () => {
    const tenantId = newTenant();
    const old = await store.create({ tenantId });
    const current = await store.create({ tenantId });

    await store.revoke(old.record.id);

    expect((await store.authenticate(current.key))?.revokedAt).toBeUndefined();
  });

  it('returns null for an unknown id or key', async () => {
    expect(await store.revoke('key_0000000000000000')).toBeNull();
    expect(await store.revoke(generateApiKey())).toBeNull();
    expect(await store.revoke('nonsense')).toBeNull();
  });
});

describe('bootstrap', () => {
  it('registers operator keys as given, with every scope', async () => {
    const pair = { tenantId: newTenant(), key: operatorKey() };

    await store.bootstrap([pair]);

    expect(await store.authenticate(pair.key)).toMatchObject({
      tenantId: pair.tenantId,
      scopes: ['jobs:read', 'jobs:write'],
      name: 'API_KEYS',
    });
    expect(await store.list(pair.tenantId)).toHaveLength(1);
  });

  it('is idempotent, also when API processes run it at the same time', async () => {
    const pair = { tenantId: newTenant(), key: operatorKey() };

    await Promise.all([
      store.bootstrap([pair]),
      store.bootstrap([pair]),
      makeApiKeyStore({ redis, prefix }).bootstrap([pair]),
    ]);
    const before = await store.authenticate(pair.key);
    await store.bootstrap([pair]);

    expect(await store.authenticate(pair.key)).toEqual(before);
    expect(await store.list(pair.tenantId)).toEqual([before]);
  });

  it('never un-revokes a key that is still in API_KEYS', async () => {
    const pair = { tenantId: newTenant(), key: operatorKey() };
    await store.bootstrap([pair]);
    await store.revoke(pair.key);

    await store.bootstrap([pair]);

    expect((await store.authenticate(pair.key))?.revokedAt).toBeDefined();
  });

  it('gives a key registered in the original format (no id) an id, keeping its creation date', async () => {
    const pair = { tenantId: newTenant(), key: operatorKey() };
    const original = {
      tenantId: pair.tenantId,
      scopes: ['jobs:read', 'jobs:write'],
      createdAt: '2026-01-02T03:04:05.000Z',
    };
    await redis.hset(`${prefix}:apikeys`, sha256Hex(pair.key), JSON.stringify(original));
    const legacy = await store.authenticate(pair.key);
    expect(legacy?.id).toBe('');

    await store.bootstrap([pair]);

    const upgraded = await store.authenticate(pair.key);
    expect(upgraded).toMatchObject({
      id: expect.stringMatching(/^key_/),
      tenantId: pair.tenantId,
      createdAt: legacy?.createdAt,
    });
    expect((await store.revoke(upgraded!.id))?.revokedAt).toBeDefined();
  });

  it('stops start-up on a ck_live_ key in API_KEYS whose checksum fails, not naming the key', () => {
    const key = generateApiKey();
    const typo = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;

    expect(loadConfig({ API_KEYS: `acme:${key}` }).api.bootstrapKeys).toEqual([{ tenantId: 'acme', key }]);
    expect(() => loadConfig({ API_KEYS: `acme:${typo}` })).toThrow(ConfigError);
    expect(() => loadConfig({ API_KEYS: `acme:${typo}` })).not.toThrow(typo.slice(8));
  });

  it('refuses a ck_live_ key with a bad checksum without naming the key', async () => {
    const key = `${generateApiKey().slice(0, -1)}!`;

    const error = await store.bootstrap([{ tenantId: 'acme', key }]).catch((caught: Error) => caught);

    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).not.toContain(key.slice(8, 20));
  });
});
