import type { Redis } from 'ioredis';
import { sha256Hex } from './ids.ts';
import { newWebhookSecret } from './webhook-signing.ts';

export type Scope = 'jobs:read' | 'jobs:write';
export const ALL_SCOPES: readonly Scope[] = ['jobs:read', 'jobs:write'];

export interface ApiKeyRecord { tenantId: string; scopes: Scope[]; createdAt: string }

export interface TenantStore {
  /** Registers operator-provided `tenant:key` pairs; idempotent, so every API process may run it. */
  bootstrapKeys(pairs: readonly { tenantId: string; key: string }[]): Promise<void>;
  authenticate(key: string): Promise<ApiKeyRecord | null>;
  /** The tenant's signing secrets, newest first; one is created on first use. */
  webhookSecrets(tenantId: string): Promise<string[]>;
}

/**
 * API keys are stored only as SHA-256 hashes: a lookup by hash never compares the key
 * itself, so there is no timing side channel on the key's bytes.
 */
export function makeTenantStore({ redis, prefix }: { redis: Redis; prefix: string }): TenantStore {
  const keysHash = `${prefix}:apikeys`;
  const tenantKey = (tenantId: string) => `${prefix}:tenant:${tenantId}`;

  return {
    async bootstrapKeys(pairs) {
      if (pairs.length === 0) return;
      const now = new Date().toISOString();
      const pipeline = redis.pipeline();
      for (const { tenantId, key } of pairs) {
        const record: ApiKeyRecord = { tenantId, scopes: [...ALL_SCOPES], createdAt: now };
        pipeline.hsetnx(keysHash, sha256Hex(key), JSON.stringify(record));
      }
      await pipeline.exec();
    },
    async authenticate(key) {
      const stored = await redis.hget(keysHash, sha256Hex(key));
      return stored ? (JSON.parse(stored) as ApiKeyRecord) : null;
    },
    async webhookSecrets(tenantId) {
      // HSETNX makes concurrent first uses across API processes agree on one secret.
      await redis.hsetnx(tenantKey(tenantId), 'webhookSecret', newWebhookSecret());
      const [current, previous, previousUntil] = await redis.hmget(tenantKey(tenantId), 'webhookSecret', 'previousWebhookSecret', 'previousUntil');
      const secrets = [current!];
      if (previous && Number(previousUntil) > Date.now()) secrets.push(previous);
      return secrets;
    },
  };
}
