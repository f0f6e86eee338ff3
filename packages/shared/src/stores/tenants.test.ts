import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type Redis } from '../infra/redis.ts';
import { makeTenantStore, type TenantStore } from './tenants.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;

let redis: Redis;
let tenants: TenantStore;

beforeAll(async () => {
  redis = createRedis(REDIS_URL);
  await redis.connect();
  tenants = makeTenantStore({ redis, prefix });
});

afterAll(async () => {
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

const newTenant = () => `tenant-${randomBytes(4).toString('hex')}`;

describe('webhookSecrets', () => {
  it('creates one secret on first use and returns the same one afterwards', async () => {
    const tenantId = newTenant();

    const first = await tenants.webhookSecrets(tenantId);
    const second = await tenants.webhookSecrets(tenantId);

    expect(first).toHaveLength(1);
    expect(first[0]).toMatch(/^whsec_/);
    expect(second).toEqual(first);
  });

  it('agrees on one secret when first uses race', async () => {
    const tenantId = newTenant();

    const results = await Promise.all(Array.from({ length: 10 }, () => tenants.webhookSecrets(tenantId)));

    expect(new Set(results.flat()).size).toBe(1);
    expect(await tenants.webhookSecrets(tenantId)).toEqual(results[0]);
  });

  it('gives each tenant its own secret', async () => {
    const [a, b] = await Promise.all([tenants.webhookSecrets(newTenant()), tenants.webhookSecrets(newTenant())]);

    expect(a).not.toEqual(b);
  });

  it('also returns the previous secret, newest first, while its grace period lasts', async () => {
    const tenantId = newTenant();
    const [current] = await tenants.webhookSecrets(tenantId);
    await redis.hset(
      `${prefix}:tenant:${tenantId}`,
      'previousWebhookSecret',
      'whsec_b2xkLW9sZC1vbGQtb2xkLW9sZC1vbGQ=',
      'previousUntil',
      String(Date.now() + 60_000),
    );

    expect(await tenants.webhookSecrets(tenantId)).toEqual([current, 'whsec_b2xkLW9sZC1vbGQtb2xkLW9sZC1vbGQ=']);
  });

  it('drops the previous secret once its grace period is over', async () => {
    const tenantId = newTenant();
    const [current] = await tenants.webhookSecrets(tenantId);
    await redis.hset(
      `${prefix}:tenant:${tenantId}`,
      'previousWebhookSecret',
      'whsec_b2xkLW9sZC1vbGQtb2xkLW9sZC1vbGQ=',
      'previousUntil',
      String(Date.now() - 1),
    );

    expect(await tenants.webhookSecrets(tenantId)).toEqual([current]);
  });
});

describe('rotateWebhookSecret', () => {
  it('issues a new current secret and keeps the old one, newest first, until the grace period ends', async () => {
    const tenantId = newTenant();
    const [old] = await tenants.webhookSecrets(tenantId);
    const before = Date.now();

    const rotated = await tenants.rotateWebhookSecret(tenantId, 60_000);

    expect(rotated.current).toMatch(/^whsec_/);
    expect(rotated.current).not.toBe(old);
    expect(rotated.previous).toBe(old);
    expect(Date.parse(rotated.previousExpiresAt!)).toBeGreaterThanOrEqual(before + 60_000);
    expect(await tenants.webhookSecrets(tenantId)).toEqual([rotated.current, old]);
    expect(await tenants.webhookSecretState(tenantId)).toEqual(rotated);
  });

  it('signs with the new secret alone once the grace period is over', async () => {
    const tenantId = newTenant();
    await tenants.webhookSecrets(tenantId);

    const rotated = await tenants.rotateWebhookSecret(tenantId, 0);

    expect(rotated.previous).toBeNull();
    expect(await tenants.webhookSecrets(tenantId)).toEqual([rotated.current]);
    expect((await tenants.webhookSecretState(tenantId)).previousExpiresAt).toBeNull();
  });

  it('keeps only the secret it replaced when rotated twice within the grace period', async () => {
    const tenantId = newTenant();
    await tenants.webhookSecrets(tenantId);
    const first = await tenants.rotateWebhookSecret(tenantId, 60_000);

    const second = await tenants.rotateWebhookSecret(tenantId, 60_000);

    expect(await tenants.webhookSecrets(tenantId)).toEqual([second.current, first.current]);
  });

  it('gives a tenant without a secret yet just the new one', async () => {
    const tenantId = newTenant();

    const rotated = await tenants.rotateWebhookSecret(tenantId, 60_000);

    expect(rotated.previous).toBeNull();
    expect(await tenants.webhookSecrets(tenantId)).toEqual([rotated.current]);
  });

  it('leaves exactly one previous secret when rotations race', async () => {
    const tenantId = newTenant();
    const [original] = await tenants.webhookSecrets(tenantId);

    const results = await Promise.all(Array.from({ length: 5 }, () => tenants.rotateWebhookSecret(tenantId, 60_000)));

    const [current, previous] = await tenants.webhookSecrets(tenantId);
    // Each rotation replaced exactly the secret before it: together they form one chain from the original.
    const replaced = new Map(results.map((result) => [result.previous, result.current]));
    const chain = [original];
    while (replaced.has(chain.at(-1)!)) chain.push(replaced.get(chain.at(-1)!)!);
    expect(chain).toHaveLength(6);
    expect([chain.at(-1), chain.at(-2)]).toEqual([current, previous]);
  });
});
