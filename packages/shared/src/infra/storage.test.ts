import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from './embedded-s3.ts';
import { createS3Client, makeStorage, readableFrom, type Storage } from './storage.ts';

const BUCKET = 'cutout-test';
const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;

let directory: string;
let s3: EmbeddedS3;
let client: S3Client;
let storage: Storage;
const agent = new Agent();

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'cutout-storage-test-'));
  s3 = await startEmbeddedS3({ directory, bucket: BUCKET });
  client = createS3Client({ endpoint: s3.endpoint, bucket: BUCKET, region: 'us-east-1', ...EMBEDDED_S3_CREDENTIALS });
  storage = makeStorage({ client, bucket: BUCKET });
});

afterAll(async () => {
  client?.destroy();
  await agent.close();
  await s3?.close();
  if (directory) await rm(directory, { recursive: true, force: true });
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const key = (name: string) => `${prefix}/${name}`;

/** `buffer` as a stream of small chunks, as an upload arrives from a socket. */
function chunked(buffer: Buffer, chunkSize = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < buffer.length; offset += chunkSize)
        yield buffer.subarray(offset, offset + chunkSize);
    })(),
  );
}

describe('putStream', () => {
  it('stores a multi-megabyte stream byte for byte (multipart upload)', async () => {
    const original = randomBytes(12 * 1024 * 1024);

    const stored = await storage.putStream(key('large.bin'), chunked(original), 'application/octet-stream');

    expect(stored).toEqual({
      bytes: original.length,
      contentType: 'application/octet-stream',
      sha256: sha256(original),
    });
    const fetched = await storage.getBuffer(key('large.bin'));
    expect(fetched.length).toBe(original.length);
    expect(sha256(fetched)).toBe(sha256(original));
    expect(await storage.head(key('large.bin'))).toEqual({
      bytes: original.length,
      contentType: 'application/octet-stream',
    });
  });

  it('stores a small stream with its content type', async () => {
    const original = randomBytes(1_000);

    const stored = await storage.putStream(key('small.png'), readableFrom(original), 'image/png');

    expect(stored).toEqual({ bytes: 1_000, contentType: 'image/png', sha256: sha256(original) });
    expect(sha256(await storage.getBuffer(key('small.png')))).toBe(sha256(original));
    expect(await storage.head(key('small.png'))).toEqual({ bytes: 1_000, contentType: 'image/png' });
  });

  it('fails when the source stream fails and leaves no object', async () => {
    const failing = Readable.from(
      (async function* () {
        yield randomBytes(1024);
        throw new Error('client went away');
      })(),
    );

    await expect(storage.putStream(key('broken.bin'), failing, 'image/png')).rejects.toThrow();
    expect(await storage.head(key('broken.bin'))).toBeNull();
  });
});

describe('putBuffer, head, getStream and delete', () => {
  it('stores a buffer that head describes and get returns', async () => {
    const original = randomBytes(200_000);

    const stored = await storage.putBuffer(key('buffer.jpg'), original, 'image/jpeg');

    expect(stored).toEqual({ bytes: 200_000, contentType: 'image/jpeg' });
    expect(await storage.head(key('buffer.jpg'))).toEqual({ bytes: 200_000, contentType: 'image/jpeg' });
    expect(sha256(await storage.getBuffer(key('buffer.jpg')))).toBe(sha256(original));
  });

  it('streams an object back', async () => {
    const original = randomBytes(300_000);
    await storage.putBuffer(key('streamed.bin'), original, 'application/octet-stream');

    const chunks: Buffer[] = [];
    for await (const chunk of await storage.getStream(key('streamed.bin'))) chunks.push(chunk as Buffer);

    expect(sha256(Buffer.concat(chunks))).toBe(sha256(original));
  });

  it('overwrites an object stored under the same key', async () => {
    await storage.putBuffer(key('same.bin'), Buffer.from('first'), 'text/plain');

    await storage.putBuffer(key('same.bin'), Buffer.from('second, longer'), 'application/json');

    expect((await storage.getBuffer(key('same.bin'))).toString()).toBe('second, longer');
    expect(await storage.head(key('same.bin'))).toEqual({ bytes: 14, contentType: 'application/json' });
  });

  it('returns null from head for a missing key', async () => {
    expect(await storage.head(key('never-stored.bin'))).toBeNull();
  });

  it('deletes an object so head no longer finds it', async () => {
    await storage.putBuffer(key('doomed.bin'), randomBytes(10), 'application/octet-stream');

    await storage.delete(key('doomed.bin'));

    expect(await storage.head(key('doomed.bin'))).toBeNull();
    await expect(storage.getBuffer(key('doomed.bin'))).rejects.toThrow();
  });

  it('deletes a missing key without an error', async () => {
    await expect(storage.delete(key('not-there.bin'))).resolves.toBeUndefined();
  });
});

describe('presign', () => {
  it('gives a URL that downloads the same bytes without credentials', async () => {
    const original = randomBytes(150_000);
    await storage.putBuffer(key('presigned.png'), original, 'image/png');

    const url = await storage.presign(key('presigned.png'), 60_000);

    expect(url.startsWith(`${s3.endpoint}/${BUCKET}/${prefix}/presigned.png?`)).toBe(true);
    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('60');
    const response = await request(url, { dispatcher: agent });
    const downloaded = Buffer.from(await response.body.arrayBuffer());
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('image/png');
    expect(sha256(downloaded)).toBe(sha256(original));
  });

  it('signs URLs for the public endpoint when given a separate presign client', async () => {
    const publicEndpoint = 'http://s3.cutout.example:9000';
    const presignClient = createS3Client({
      endpoint: publicEndpoint,
      bucket: BUCKET,
      region: 'us-east-1',
      ...EMBEDDED_S3_CREDENTIALS,
    });
    try {
      const publicStorage = makeStorage({ client, bucket: BUCKET, presignClient });

      const url = new URL(await publicStorage.presign(key('presigned.png'), 60_000));

      expect(url.origin).toBe(publicEndpoint);
      expect(url.pathname).toBe(`/${BUCKET}/${prefix}/presigned.png`);
      expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
      expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    } finally {
      presignClient.destroy();
    }
  });

  it('rounds a sub-second expiry up to one second', async () => {
    const url = await storage.presign(key('presigned.png'), 1);

    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('1');
  });
});

describe('ensureBucket and ping', () => {
  it('is idempotent on an existing bucket', async () => {
    await storage.ensureBucket();
    await storage.ensureBucket();

    await expect(storage.ping()).resolves.toBeUndefined();
  });

  it('creates a missing bucket that then stores objects', async () => {
    const other = makeStorage({ client, bucket: `${prefix}-new` });
    await expect(other.ping()).rejects.toThrow();

    await other.ensureBucket();
    await other.ensureBucket();

    await other.putBuffer('hello.txt', Buffer.from('hello'), 'text/plain');
    expect((await other.getBuffer('hello.txt')).toString()).toBe('hello');
    await expect(other.ping()).resolves.toBeUndefined();
  });
});
