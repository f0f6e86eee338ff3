import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

export const ALL_SCOPES = ['jobs:read', 'jobs:write'] as const;
export type Scope = (typeof ALL_SCOPES)[number];

/** A tenant's signing secrets: during a rotation's grace period the previous one still signs. */
interface WebhookSecretState {
  current: string;
  previous: string | null;
  previousExpiresAt: string | null;
}

export interface TenantStore {
  /** The tenant's signing secrets, newest first; one is created on first use. */
  webhookSecrets(tenantId: string): Promise<string[]>;
  webhookSecretState(tenantId: string): Promise<WebhookSecretState>;
  /** Issues a new current secret; the one it replaces keeps signing for `graceMs`. */
  rotateWebhookSecret(tenantId: string, graceMs: number): Promise<WebhookSecretState>;
}

/**
 * Rotation in one step, so concurrent rotations and readers never see a half-rotated
 * tenant: previous = current (with its end), current = new. A secret still in its grace
 * period when another rotation comes is dropped, as only one previous secret is kept.
 * Returns the secret that was current, or nil on a tenant that had none yet.
 */
const ROTATE_SECRET = `
local current = redis.call('HGET', KEYS[1], 'webhookSecret')
if current then
  redis.call('HSET', KEYS[1], 'previousWebhookSecret', current, 'previousUntil', ARGV[2])
else
  redis.call('HDEL', KEYS[1], 'previousWebhookSecret', 'previousUntil')
end
redis.call('HSET', KEYS[1], 'webhookSecret', ARGV[1])
return current
`;

/** A tenant's webhook signing secrets (API keys live in api-keys.ts). */
export function makeTenantStore({ redis, prefix }: { redis: Redis; prefix: string }): TenantStore {
  const tenantKey = (tenantId: string) => `${prefix}:tenant:${tenantId}`;

  async function webhookSecretState(tenantId: string): Promise<WebhookSecretState> {
    // HSETNX makes concurrent first uses across API processes agree on one secret.
    await redis.hsetnx(tenantKey(tenantId), 'webhookSecret', newWebhookSecret());
    const [current, previous, previousUntil] = await redis.hmget(
      tenantKey(tenantId),
      'webhookSecret',
      'previousWebhookSecret',
      'previousUntil',
    );
    return secretState(current!, previous, Number(previousUntil));
  }

  return {
    async webhookSecrets(tenantId) {
      const { current, previous } = await webhookSecretState(tenantId);
      return previous ? [current, previous] : [current];
    },
    webhookSecretState,
    async rotateWebhookSecret(tenantId, graceMs) {
      const secret = newWebhookSecret();
      const previousUntil = Date.now() + graceMs;
      const replaced = (await redis.eval(ROTATE_SECRET, 1, tenantKey(tenantId), secret, String(previousUntil))) as
        | string
        | null;
      return secretState(secret, replaced, previousUntil);
    },
  };
}

function secretState(current: string, previous: string | null | undefined, previousUntil: number): WebhookSecretState {
  const active = Boolean(previous) && previousUntil > Date.now();
  return {
    current,
    previous: active ? previous! : null,
    previousExpiresAt: active ? new Date(previousUntil).toISOString() : null,
  };
}
