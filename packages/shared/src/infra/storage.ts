import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  S3Client,
  GetObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  CopyObjectCommand,
  HeadObjectCommand,
  HeadBucketCommand,
  CreateBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Config } from './config.ts';
import { makePutPresigner, type PresignedPut, type PutTarget } from './presign-put.ts';

export function createS3Client(s3: Config['s3']): S3Client {
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    // Any non-AWS endpoint (s3rver, MinIO) addresses buckets by path.
    forcePathStyle: Boolean(s3.endpoint),
    credentials:
      s3.accessKeyId && s3.secretAccessKey
        ? { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }
        : undefined,
    // aws-chunked trailers are stored as data by s3rver and some S3-compatible stores.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

interface StoredObject {
  bytes: number;
  contentType: string;
}
export interface StreamedObject extends StoredObject {
  sha256: string;
}

export interface Storage {
  /** Streams `body` to S3 (never whole in memory); reports its size and SHA-256. */
  putStream(key: string, body: Readable, contentType: string, signal?: AbortSignal): Promise<StreamedObject>;
  putBuffer(key: string, body: Buffer, contentType: string): Promise<StoredObject>;
  getStream(key: string): Promise<Readable>;
  getBuffer(key: string): Promise<Buffer>;
  head(key: string): Promise<StoredObject | null>;
  delete(key: string): Promise<void>;
  copy(fromKey: string, toKey: string): Promise<void>;
  /** A GET URL valid for `expiresInMs`; with `downloadName`, S3 answers it as an attachment of that name. */
  presign(key: string, expiresInMs: number, options?: { downloadName?: string }): Promise<string>;
  /**
   * PUT URLs for clients to upload straight to S3, one per target, in order: each bound to
   * its key, size and content type (signed headers the client must send as given).
   */
  presignPuts(targets: readonly PutTarget[], expiresInMs: number): AsyncGenerator<PresignedPut>;
  /** The objects under `prefix` in key order, with their sizes, a page at a time. */
  list(prefix: string): AsyncGenerator<{ key: string; bytes: number }>;
  /** Deletes up to any number of keys, 1,000 per request. */
  deleteMany(keys: readonly string[]): Promise<void>;
  ensureBucket(): Promise<void>;
  ping(): Promise<void>;
}

/**
 * `presignClient` signs result URLs for clients; it differs from `client` when S3 is
 * reached under another name from outside (S3_PUBLIC_ENDPOINT, e.g. MinIO in compose).
 */
export function makeStorage({
  client,
  bucket,
  presignClient = client,
}: {
  client: S3Client;
  bucket: string;
  presignClient?: S3Client;
}): Storage {
  const putPresigner = makePutPresigner(presignClient, bucket);
  return {
    async putStream(key, body, contentType, signal) {
      let bytes = 0;
      const hash = createHash('sha256');
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          hash.update(chunk);
          callback(null, chunk);
        },
      });
      // One part in flight: memory per upload stays near one 5 MiB part, not four.
      const upload = new Upload({
        client,
        queueSize: 1,
        params: { Bucket: bucket, Key: key, Body: counter, ContentType: contentType },
      });
      const abort = () => void upload.abort().catch(() => undefined);
      signal?.addEventListener('abort', abort, { once: true });
      try {
        await Promise.all([pipeline(body, counter), upload.done()]);
      } finally {
        signal?.removeEventListener('abort', abort);
      }
      return { bytes, contentType, sha256: hash.digest('hex') };
    },
    async putBuffer(key, body, contentType) {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ContentLength: body.length,
        }),
      );
      return { bytes: body.length, contentType };
    },
    async getStream(key) {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return response.Body as Readable;
    },
    async getBuffer(key) {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await response.Body!.transformToByteArray());
    },
    async head(key) {
      try {
        const response = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { bytes: response.ContentLength ?? 0, contentType: response.ContentType ?? 'application/octet-stream' };
      } catch (error) {
        if (isNotFound(error)) return null;
        throw error;
      }
    },
    async delete(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    async copy(fromKey, toKey) {
      await client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: toKey,
          CopySource: `${bucket}/${encodeURIComponent(fromKey).replace(/%2F/g, '/')}`,
        }),
      );
    },
    presign(key, expiresInMs, { downloadName } = {}) {
      // The name is the client's (a SKU): only a safe subset goes into the header.
      const disposition = downloadName
        ? `attachment; filename="${downloadName.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120)}"`
        : undefined;
      return getSignedUrl(
        presignClient,
        new GetObjectCommand({ Bucket: bucket, Key: key, ResponseContentDisposition: disposition }),
        { expiresIn: Math.ceil(expiresInMs / 1000) },
      );
    },
    presignPuts(targets, expiresInMs) {
      return putPresigner(targets, expiresInMs);
    },
    async *list(prefix) {
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const object of page.Contents ?? []) if (object.Key) yield { key: object.Key, bytes: object.Size ?? 0 };
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },
    async deleteMany(keys) {
      for (let start = 0; start < keys.length; start += 1_000) {
        const objects = keys.slice(start, start + 1_000).map((Key) => ({ Key }));
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
      }
    },
    async ensureBucket() {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (error) {
        if (!isNotFound(error)) throw error;
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
      }
    },
    async ping() {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
    },
  };
}

/** S3's answer for a key that is not there (NoSuchKey from GetObject, NotFound from HEAD and copy). */
export function isMissingObject(error: unknown): boolean {
  const name = (error as { name?: string } | null)?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}

function isNotFound(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return status === 404 || isMissingObject(error) || (error as { name?: string }).name === 'NoSuchBucket';
}

export const readableFrom = (buffer: Buffer): Readable => Readable.from([buffer]);
