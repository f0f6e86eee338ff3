import type { Redis } from 'ioredis';
import { randomBase62, sha256Hex } from '../../../../packages/shared/src/infra/ids.ts';
import { ALL_SCOPES, type Scope } from '../../../../packages/shared/src/stores/tenants.ts';

/**
 * Keys Cutout issues: `ck_live_` + 32 random base62 characters (≈ 190 bits) + a 6-character
 * base62 CRC32 of everything before it. CRC32 catches every single-character typo and every
 * swap of neighbours, so a mistyped key is refused before any lookup.
 */
const ISSUED_PREFIX = 'ck_live_';
const ISSUED_KEY = /^ck_live_[0-9A-Za-z]{38}$/;
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
/** Operator keys from API_KEYS are opaque strings from a secret store; this is the shortest accepted. */
const MIN_BOOTSTRAP_KEY_LENGTH = 24;
export const TENANT_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const API_KEY_ID_PATTERN = /^key_[0-9A-Za-z]{16}$/;
const MAX_NAME_LENGTH = 100;

/** What is stored per key; never the key. `{ tenantId, scopes, createdAt }` is the original format. */
export interface StoredApiKey {
  id: string;
  tenantId: string;
  scopes: Scope[];
  createdAt: string;
  revokedAt?: string;
  name?: string;
  /** The start of the key, so people can tell keys apart. */
  prefix: string;
}

export interface ApiKeyStore {
  /** Returns the key itself this once; only its hash is stored. */
  create(input: {
    tenantId: string;
    scopes?: readonly Scope[];
    name?: string;
  }): Promise<{ key: string; record: StoredApiKey }>;
  /** Oldest first; every tenant's without `tenantId`. */
  list(tenantId?: string): Promise<StoredApiKey[]>;
  /** Null when no such key. Revoking again keeps the first revocation date. */
  revoke(idOrKey: string): Promise<StoredApiKey | null>;
  /** Null for a malformed or unknown key; a revoked key's record, so callers can say it was revoked. */
  authenticate(key: string): Promise<StoredApiKey | null>;
  /** Registers operator-provided `tenant:key` pairs; idempotent, so every API process may run it. */
  bootstrap(pairs: readonly { tenantId: string; key: string }[]): Promise<void>;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const CRC_TABLE = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte;
  for (let bit = 0; bit < 8; bit += 1) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  return crc >>> 0;
});

/** CRC-32 (IEEE), as zlib computes it; zlib.crc32 needs Node 20.15 and we support 20.11. */
export function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of Buffer.from(text, 'utf8')) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** 62^6 > 2^32, so six characters hold any CRC32 and the encoding is one-to-one. */
function checksum(body: string): string {
  let value = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i += 1) {
    out = BASE62[value % 62]! + out;
    value = Math.floor(value / 62);
  }
  return out;
}

export function generateApiKey(): string {
  const body = `${ISSUED_PREFIX}${randomBase62(RANDOM_LENGTH)}`;
  return `${body}${checksum(body)}`;
}

const newApiKeyId = (): string => `key_${randomBase62(16)}`;

/**
 * Whether `key` could be a key at all: an issued `ck_live_` key with a valid checksum, or an
 * operator key (any other string of 24+ characters). Needs no Redis. The checksum is not a
 * secret (anyone can compute it), so a plain string comparison leaks nothing.
 */
export function isWellFormedApiKey(key: string): boolean {
  if (key.startsWith(ISSUED_PREFIX))
    return ISSUED_KEY.test(key) && checksum(key.slice(0, -CHECKSUM_LENGTH)) === key.slice(-CHECKSUM_LENGTH);
  return key.length >= MIN_BOOTSTRAP_KEY_LENGTH;
}

/** Issued keys show their type and 4 random characters; operator keys only 4, as they may be short. */
const displayPrefix = (key: string): string => (key.startsWith(ISSUED_PREFIX) ? key.slice(0, 12) : key.slice(0, 4));

/** Atomic so two revocations never both write, and the first revocation date is kept. */
const REVOKE = `
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if not stored then return false end
local record = cjson.decode(stored)
if record.revokedAt then return stored end
record.revokedAt = ARGV[2]
stored = cjson.encode(record)
redis.call('HSET', KEYS[1], ARGV[1], stored)
redis.call('PUBLISH', ARGV[3], ARGV[1])
return stored
`;

/**
 * Atomic so API processes starting together register a key once, with one id. A key already
 * registered is left alone, so a restart never un-revokes it. A record of the tenant store's
 * older format (no id) gets an id and prefix so it can be listed and revoked by id.
 */
const BOOTSTRAP = `
local stored = redis.call('HGET', KEYS[1], ARGV[1])
local record = ARGV[2]
if stored then
  local existing = cjson.decode(stored)
  if existing.id or existing.tenantId ~= ARGV[5] then return 0 end
  existing.id = ARGV[3]
  existing.prefix = ARGV[4]
  record = cjson.encode(existing)
end
redis.call('HSET', KEYS[1], ARGV[1], record)
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
`;

/**
 * Redis layout: `<prefix>:apikeys` maps sha256(key) → record JSON; `<prefix>:apikey-id:<id>`
 * → sha256(key), for revocation by id; `<prefix>:tenant:<tenant>:apikeys` is the set of a
 * tenant's key ids. Keys are found by the hash of what the client sent, never by comparing
 * the key itself, so lookups take the same time whatever the key's bytes.
 */
/** Where a revocation is announced (the key's SHA-256), so processes caching keys drop it at once. */
export const apiKeyRevocationChannel = (prefix: string): string => `${prefix}:apikeys:revoked`;

export function makeApiKeyStore({ redis, prefix }: { redis: Redis; prefix: string }): ApiKeyStore {
  const keysHash = `${prefix}:apikeys`;
  const revokedChannel = apiKeyRevocationChannel(prefix);
  const idKey = (id: string) => `${prefix}:apikey-id:${id}`;
  const tenantKeys = (tenantId: string) => `${prefix}:tenant:${tenantId}:apikeys`;

  async function records(hashes: readonly string[]): Promise<StoredApiKey[]> {
    if (hashes.length === 0) return [];
    const stored = await redis.hmget(keysHash, ...hashes);
    return sortByCreation(stored.filter((json) => json !== null).map(parseRecord));
  }

  return {
    async create({ tenantId, scopes = ALL_SCOPES, name }) {
      assertValidInput(tenantId, scopes, name);
      const key = generateApiKey();
      const record: StoredApiKey = {
        id: newApiKeyId(),
        tenantId,
        scopes: ALL_SCOPES.filter((scope) => scopes.includes(scope)),
        createdAt: new Date().toISOString(),
        ...(name ? { name } : {}),
        prefix: displayPrefix(key),
      };
      const hash = sha256Hex(key);
      const results = await redis
        .multi()
        .hset(keysHash, hash, JSON.stringify(record))
        .set(idKey(record.id), hash)
        .sadd(tenantKeys(tenantId), record.id)
        .exec();
      const failed = results?.find(([error]) => error)?.[0];
      if (!results || failed) throw failed ?? new Error('API key was not stored: the transaction was aborted');
      return { key, record };
    },
    async list(tenantId) {
      // HVALS reads every key's record at once: fine for the hundreds of keys a deployment holds.
      if (tenantId === undefined) return sortByCreation((await redis.hvals(keysHash)).map(parseRecord));
      const ids = await redis.smembers(tenantKeys(tenantId));
      if (ids.length === 0) return [];
      const hashes = await redis.mget(...ids.map(idKey));
      return records(hashes.filter((hash) => hash !== null));
    },
    async revoke(idOrKey) {
      const hash = API_KEY_ID_PATTERN.test(idOrKey)
        ? await redis.get(idKey(idOrKey))
        : isWellFormedApiKey(idOrKey)
          ? sha256Hex(idOrKey)
          : null;
      if (!hash) return null;
      const stored = (await redis.eval(REVOKE, 1, keysHash, hash, new Date().toISOString(), revokedChannel)) as
        | string
        | null;
      return stored ? parseRecord(stored) : null;
    },
    async authenticate(key) {
      // Typos and junk are refused here, without a round trip to Redis.
      if (!isWellFormedApiKey(key)) return null;
      const stored = await redis.hget(keysHash, sha256Hex(key));
      return stored ? parseRecord(stored) : null;
    },
    async bootstrap(pairs) {
      const createdAt = new Date().toISOString();
      for (const { tenantId, key } of pairs) {
        assertValidInput(tenantId, ALL_SCOPES, undefined);
        // The message names the tenant, never the key.
        if (!isWellFormedApiKey(key)) throw new RangeError(`The bootstrap key of tenant ${tenantId} is malformed`);
        const id = newApiKeyId();
        const record: StoredApiKey = {
          id,
          tenantId,
          scopes: [...ALL_SCOPES],
          createdAt,
          name: 'API_KEYS',
          prefix: displayPrefix(key),
        };
        await redis.eval(
          BOOTSTRAP,
          3,
          keysHash,
          idKey(id),
          tenantKeys(tenantId),
          sha256Hex(key),
          JSON.stringify(record),
          id,
          record.prefix,
          tenantId,
        );
      }
    },
  };
}

function assertValidInput(tenantId: string, scopes: readonly Scope[], name: string | undefined): void {
  if (!TENANT_ID_PATTERN.test(tenantId)) throw new RangeError('A tenant id is 1 to 64 of A-Z a-z 0-9 _ -');
  if (scopes.length === 0 || scopes.some((scope) => !ALL_SCOPES.includes(scope))) {
    throw new RangeError(`Scopes must be one or more of ${ALL_SCOPES.join(', ')}`);
  }
  if (name !== undefined && (name.length > MAX_NAME_LENGTH || /\p{Cc}/u.test(name))) {
    throw new RangeError(`A key name is at most ${MAX_NAME_LENGTH} characters, without control characters`);
  }
}

/** Records written before ids existed read with an empty id and prefix. */
function parseRecord(json: string): StoredApiKey {
  const record = JSON.parse(json) as Partial<StoredApiKey> & Pick<StoredApiKey, 'tenantId' | 'scopes' | 'createdAt'>;
  return { ...record, id: record.id ?? '', prefix: record.prefix ?? '' };
}

const sortByCreation = (keys: StoredApiKey[]): StoredApiKey[] =>
  keys.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
