import type { Redis } from 'ioredis';
import { randomBase62 } from '../infra/ids.ts';

/** Opaque, unguessable upload id. */
export const newUploadId = (): string => `upl_${randomBase62(24)}`;

/** Where a direct upload's files go: keys Cutout chooses, never the client's file names. The index is padded so keys list in file order. */
export const uploadPrefix = (tenantId: string, uploadId: string): string => `uploads/${tenantId}/${uploadId}/`;
export const uploadKey = (tenantId: string, uploadId: string, index: number): string =>
  `${uploadPrefix(tenantId, uploadId)}${String(index).padStart(7, '0')}`;

/** One file a client declared: its name (the item's client_ref), media type and size. */
export interface UploadFile {
  name: string;
  contentType: string;
  bytes: number;
}

/** `open` until a batch takes it (`used`); a batch that fails to be created gives it back. */
interface UploadRecord {
  id: string;
  tenantId: string;
  status: 'open' | 'used';
  createdAt: string;
  expiresAt: string;
  files: number;
  batchId?: string;
  /** A used upload past its expiry: only the objects no item took (canceled items) are left to delete. */
  leftovers?: boolean;
}

type UploadClaim = 'claimed' | 'missing' | 'expired' | 'used';

export interface UploadStore {
  /** Appends declared files to an upload not yet opened (its record written last, by `open`). */
  addFiles(id: string, files: readonly UploadFile[], expiresAt: string): Promise<void>;
  /** Makes the upload usable, to be swept at `expiresAt` if no batch takes it. */
  open(record: Omit<UploadRecord, 'status'>): Promise<void>;
  get(id: string): Promise<UploadRecord | null>;
  /** Declared files from `offset`, in order. */
  files(id: string, offset: number, count: number): Promise<UploadFile[]>;
  /**
   * A batch takes the upload: once, before it expires. An upload held by a batch that was
   * since discarded or failed to be created can be taken again (a retry).
   */
  claim(id: string, tenantId: string, batchId: string): Promise<UploadClaim>;
  /** What `claim` would answer now, claiming nothing (a dry run of a batch made from the upload). */
  peek(id: string, tenantId: string): Promise<UploadClaim>;
  /** The batch that claimed the upload was not created: the upload is open again. */
  unclaim(id: string, batchId: string): Promise<void>;
  /** Uploads whose sweep is due at `now`, oldest first. */
  due(now: number, count: number): Promise<string[]>;
  /** The sweep of a used upload comes again at `at` (its leftover objects); its file list goes now. */
  resweepAt(id: string, at: number): Promise<void>;
  /** The upload is gone from Redis, with its file list and its sweep. */
  forget(id: string): Promise<void>;
}

/** Declared files written per RPUSH. */
const CHUNK = 1_000;
/** Redis keeps an upload past its sweep only as a backstop for a sweep that never ran. */
const BACKSTOP_MS = 86_400_000;

/** KEYS: upload, sweep. ARGV: id, tenant, batch, now ms, batch key prefix, '1' to only look. */
const CLAIM = `
local fields = redis.call('HMGET', KEYS[1], 'tenantId', 'status', 'expiresAt', 'batchId')
if not fields[1] or fields[1] ~= ARGV[2] then return 'missing' end
if fields[2] == 'used' and fields[4] ~= ARGV[3] then
  local holder = redis.call('HGET', ARGV[5] .. fields[4], 'status')
  if holder and holder ~= 'failed_to_create' then return 'used' end
end
local expires = tonumber(fields[3])
if expires <= tonumber(ARGV[4]) then return 'expired' end
if ARGV[6] == '1' then return 'claimed' end
redis.call('HSET', KEYS[1], 'status', 'used', 'batchId', ARGV[3])
return 'claimed'
`;

export function makeUploadStore({ redis, prefix }: { redis: Redis; prefix: string }): UploadStore {
  const uploadKeyOf = (id: string) => `${prefix}:upload:${id}`;
  const filesKey = (id: string) => `${uploadKeyOf(id)}:files`;
  const sweepKey = `${prefix}:uploads:sweep`;

  return {
    async addFiles(id, files, expiresAt) {
      for (let start = 0; start < files.length; start += CHUNK) {
        const entries = files
          .slice(start, start + CHUNK)
          .map((file) => JSON.stringify([file.name, file.contentType, file.bytes]));
        await redis
          .multi()
          .rpush(filesKey(id), ...entries)
          .pexpireat(filesKey(id), Date.parse(expiresAt) + BACKSTOP_MS)
          .exec();
      }
    },
    async open(record) {
      const expiresMs = Date.parse(record.expiresAt);
      await redis
        .multi()
        .hset(
          uploadKeyOf(record.id),
          'id',
          record.id,
          'tenantId',
          record.tenantId,
          'status',
          'open',
          'createdAt',
          record.createdAt,
          'expiresAt',
          String(expiresMs),
          'files',
          String(record.files),
        )
        .pexpireat(uploadKeyOf(record.id), expiresMs + BACKSTOP_MS)
        .zadd(sweepKey, expiresMs, record.id)
        .exec();
    },
    async get(id) {
      const hash = await redis.hgetall(uploadKeyOf(id));
      if (!hash.id) return null;
      return {
        id: hash.id,
        tenantId: hash.tenantId!,
        status: hash.status as UploadRecord['status'],
        createdAt: hash.createdAt!,
        expiresAt: new Date(Number(hash.expiresAt)).toISOString(),
        files: Number(hash.files),
        batchId: hash.batchId || undefined,
        leftovers: hash.leftovers === '1',
      };
    },
    async files(id, offset, count) {
      const entries = await redis.lrange(filesKey(id), offset, offset + count - 1);
      return entries.map((entry) => {
        const [name, contentType, bytes] = JSON.parse(entry) as [string, string, number];
        return { name, contentType, bytes };
      });
    },
    async claim(id, tenantId, batchId) {
      return (await redis.eval(
        CLAIM,
        2,
        uploadKeyOf(id),
        sweepKey,
        id,
        tenantId,
        batchId,
        String(Date.now()),
        `${prefix}:batch:`,
        '0',
      )) as UploadClaim;
    },
    async peek(id, tenantId) {
      return (await redis.eval(
        CLAIM,
        2,
        uploadKeyOf(id),
        sweepKey,
        id,
        tenantId,
        '',
        String(Date.now()),
        `${prefix}:batch:`,
        '1',
      )) as UploadClaim;
    },
    async unclaim(id, batchId) {
      await redis.eval(
        `if redis.call('HGET', KEYS[1], 'batchId') == ARGV[1] then redis.call('HSET', KEYS[1], 'status', 'open', 'batchId', '') end`,
        1,
        uploadKeyOf(id),
        batchId,
      );
    },
    async due(now, count) {
      return redis.zrangebyscore(sweepKey, '-inf', now, 'LIMIT', 0, count);
    },
    async resweepAt(id, at) {
      await redis
        .multi()
        .zadd(sweepKey, at, id)
        .hset(uploadKeyOf(id), 'leftovers', '1')
        .unlink(filesKey(id))
        .pexpireat(uploadKeyOf(id), at + BACKSTOP_MS)
        .exec();
    },
    async forget(id) {
      await redis.multi().unlink(uploadKeyOf(id), filesKey(id)).zrem(sweepKey, id).exec();
    },
  };
}
