import { sha256Hex, type Redis } from '@cutout/shared/infra';
import type { ApiKeyStore, StoredApiKey } from './api-keys.ts';

export interface ApiKeyCache extends Pick<ApiKeyStore, 'authenticate'> {
  close(): Promise<void>;
}

interface Entry {
  record: StoredApiKey;
  expiresAtMs: number;
}

/**
 * Remembers the keys this process has seen for `ttlMs`, so a polling client costs no key
 * lookup per request. A revocation is announced on `channel` (the key store publishes the
 * key's digest with the revocation itself) and drops the entry at once. Entries are used
 * only while the subscription is live: when the subscriber loses its connection, announcements
 * may be missed, so the cache empties and every request is looked up until it is back.
 */
export function makeApiKeyCache({
  apiKeys,
  subscriber,
  channel,
  ttlMs,
  maxEntries = 10_000,
  now = Date.now,
}: {
  apiKeys: Pick<ApiKeyStore, 'authenticate'>;
  subscriber: Redis;
  channel: string;
  ttlMs: number;
  maxEntries?: number;
  now?: () => number;
}): ApiKeyCache {
  const entries = new Map<string, Entry>();
  let live = false;
  let closed = false;
  /** Counts announcements, so a lookup that raced one is not kept. */
  let announcements = 0;

  const suspend = () => {
    live = false;
    entries.clear();
  };
  const subscribe = () => {
    if (closed) return;
    subscriber.subscribe(channel).then(() => {
      live = !closed;
    }, suspend);
  };
  subscriber.on('message', (from: string, digest: string) => {
    if (from !== channel) return;
    announcements += 1;
    entries.delete(digest);
  });
  subscriber.on('close', suspend);
  // A duplicate connection has no error listener of its own; the main one logs Redis trouble.
  subscriber.on('error', suspend);
  subscriber.on('reconnecting', suspend);
  subscriber.on('ready', subscribe);
  if (subscriber.status === 'ready') subscribe();
  // A lazily connecting client (the apps' own) is opened here; until it is ready nothing is cached.
  else if (subscriber.status === 'wait') subscriber.connect().catch(() => undefined);

  return {
    async authenticate(key) {
      const digest = sha256Hex(key);
      const cached = entries.get(digest);
      if (cached && cached.expiresAtMs > now() && live) return cached.record;
      const [wasLive, seen] = [live, announcements];
      const record = await apiKeys.authenticate(key);
      // Only what was read while announcements were arriving, and none arrived meanwhile, may be kept.
      if (record && wasLive && live && seen === announcements && ttlMs > 0) {
        entries.delete(digest);
        entries.set(digest, { record, expiresAtMs: now() + ttlMs });
        if (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
      }
      return record;
    },
    async close() {
      closed = true;
      suspend();
      subscriber.disconnect();
    },
  };
}
