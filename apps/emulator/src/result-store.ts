import { randomBytes } from 'node:crypto';

/**
 * In-memory results for `responseMode: 'json-url'`: the JSON names a URL on the emulator,
 * which serves the PNG for `ttlMs`. Bounded by count so a long benchmark cannot exhaust
 * memory; the oldest entry goes first (Map keeps insertion order).
 */
export interface ResultStore {
  put(png: Buffer): string;
  get(id: string): Buffer | undefined;
}

export interface ResultStoreOptions {
  ttlMs: number;
  maxEntries: number;
  now?: () => number;
}

export function makeResultStore({ ttlMs, maxEntries, now = Date.now }: ResultStoreOptions): ResultStore {
  const entries = new Map<string, { png: Buffer; expiresAt: number }>();

  function evict(at: number): void {
    for (const [id, entry] of entries) {
      if (entry.expiresAt > at && entries.size < maxEntries) break;
      entries.delete(id);
    }
  }

  function put(png: Buffer): string {
    const at = now();
    evict(at);
    // Unguessable, like a real presigned result URL.
    const id = randomBytes(16).toString('hex');
    entries.set(id, { png, expiresAt: at + ttlMs });
    return id;
  }

  function get(id: string): Buffer | undefined {
    const entry = entries.get(id);
    if (!entry || entry.expiresAt <= now()) return undefined;
    return entry.png;
  }

  return { put, get };
}
