import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from './embedded-s3.ts';
import { createS3Client, makeStorage, type Storage } from './storage.ts';
import { makePutPresigner, type PutTarget } from './presign-put.ts';

const BUCKET = 'presign-test';
let directory: string;
let s3: EmbeddedS3;
let client: S3Client;
let storage: Storage;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'cutout-presign-test-'));
  s3 = await startEmbeddedS3({ directory, bucket: BUCKET });
  client = createS3Client({ endpoint: s3.endpoint, bucket: BUCKET, region: 'us-east-1', ...EMBEDDED_S3_CREDENTIALS });
  storage = makeStorage({ client, bucket: BUCKET });
});
afterAll(async () => {
  client?.destroy();
  await s3?.close();
  if (directory) await rm(directory, { recursive: true, force: true });
});

const targets: PutTarget[] = [0, 1, 2].map((index) => ({
  key: `uploads/acme/upl_x/000000${index}`,
  bytes: 100 + index,
  contentType: index === 2 ? 'image/jpeg' : 'image/png',
}));
const params = (url: string) => Object.fromEntries(new URL(url).searchParams);

async function collect(presign: ReturnType<typeof makePutPresigner>, expiresInMs = 3_600_000) {
  const urls = [];
  for await (const put of presign(targets, expiresInMs)) urls.push(put);
  return urls;
}

describe('presigned PUT URLs', () => {
  it('are signed exactly as getSignedUrl signs them, path-style and virtual-host, with size and type among the signed headers', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2030-05-01T12:00:00Z'));
    const aws = createS3Client({
      bucket: BUCKET,
      region: 'eu-west-1',
      accessKeyId: 'AKIAEXAMPLE',
      secretAccessKey: 'secret',
    });
    try {
      for (const s3Client of [client, aws]) {
        const puts = await collect(makePutPresigner(s3Client, BUCKET));
        for (const [index, target] of targets.entries()) {
          const reference = await getSignedUrl(
            s3Client,
            new PutObjectCommand({
              Bucket: BUCKET,
              Key: target.key,
              ContentType: target.contentType,
              ContentLength: target.bytes,
            }),
            {
              expiresIn: 3_600,
              signableHeaders: new Set(['content-type', 'content-length']),
            },
          );
          expect(new URL(puts[index]!.url).origin + new URL(puts[index]!.url).pathname).toBe(
            new URL(reference).origin + new URL(reference).pathname,
          );
          expect(params(puts[index]!.url)).toEqual(params(reference));
          expect(params(reference)['X-Amz-SignedHeaders']).toBe('content-length;content-type;host');
          expect(puts[index]!.headers).toEqual({
            'content-type': target.contentType,
            'content-length': String(target.bytes),
          });
        }
      }
      expect(new URL((await collect(makePutPresigner(aws, BUCKET)))[1]!.url).hostname).toBe(
        `${BUCKET}.s3.eu-west-1.amazonaws.com`,
      );
    } finally {
      vi.useRealTimers();
      aws.destroy();
    }
  });

  it('upload to the key with the headers they name; list and deleteMany see the objects', async () => {
    for await (const [index, put] of (async function* () {
      let index = 0;
      for await (const put of storage.presignPuts(targets, 60_000)) yield [index++, put] as const;
    })()) {
      const response = await request(put.url, {
        method: 'PUT',
        body: Buffer.alloc(targets[index]!.bytes, 7),
        headers: put.headers,
      });
      expect(response.statusCode).toBe(200);
      await response.body.dump();
    }
    const listed = [];
    for await (const object of storage.list('uploads/acme/upl_x/')) listed.push(object);
    expect(listed).toEqual(targets.map(({ key, bytes }) => ({ key, bytes })));
    await storage.deleteMany(listed.map(({ key }) => key));
    const left = [];
    for await (const object of storage.list('uploads/acme/upl_x/')) left.push(object);
    expect(left).toEqual([]);
  });
});
