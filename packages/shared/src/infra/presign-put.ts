import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl, S3RequestPresigner } from '@aws-sdk/s3-request-presigner';

/** One object a client will PUT: where, how large, of which type. */
export interface PutTarget {
  key: string;
  bytes: number;
  contentType: string;
}

/** A PUT URL and the headers the client must send with it (they are part of the signature). */
export interface PresignedPut {
  url: string;
  headers: Record<string, string>;
}

/** Signed with the URL: S3 refuses a PUT whose Content-Length or Content-Type differs. */
const SIGNED_HEADERS = new Set(['content-type', 'content-length']);

/**
 * PUT URLs for many keys. The first is made by `getSignedUrl`, which resolves the endpoint
 * (path-style or virtual-host, S3_PUBLIC_ENDPOINT); the others reuse its origin and path
 * prefix and are signed by S3RequestPresigner alone, about ten times faster (the command's
 * middleware is most of getSignedUrl's cost), so 100,000 URLs take seconds, not minutes. Keys
 * are Cutout's own (`uploads/<tenant>/<upload>/<index>`): nothing in them needs escaping.
 */
export function makePutPresigner(client: S3Client, bucket: string) {
  const presigner = new S3RequestPresigner({ ...client.config });
  return async function* presignPuts(targets: readonly PutTarget[], expiresInMs: number): AsyncGenerator<PresignedPut> {
    const expiresIn = Math.ceil(expiresInMs / 1000);
    const first = targets[0];
    if (!first) return;
    const headersOf = ({ bytes, contentType }: PutTarget) => ({
      'content-type': contentType,
      'content-length': String(bytes),
    });
    const url = await getSignedUrl(
      client,
      new PutObjectCommand({
        Bucket: bucket,
        Key: first.key,
        ContentType: first.contentType,
        ContentLength: first.bytes,
      }),
      {
        expiresIn,
        signableHeaders: SIGNED_HEADERS,
      },
    );
    yield { url, headers: headersOf(first) };
    const template = new URL(url);
    const pathPrefix = template.pathname.slice(0, template.pathname.length - first.key.length);
    const port = template.port ? Number(template.port) : undefined;
    for (const target of targets.slice(1)) {
      const signed = await presigner.presign(
        {
          method: 'PUT',
          protocol: template.protocol,
          hostname: template.hostname,
          port,
          path: `${pathPrefix}${target.key}`,
          query: { 'x-id': 'PutObject' },
          headers: { host: template.host, ...headersOf(target) },
        } as Parameters<S3RequestPresigner['presign']>[0],
        { expiresIn, signableHeaders: SIGNED_HEADERS },
      );
      const query = new URLSearchParams(signed.query as Record<string, string>);
      yield { url: `${template.origin}${signed.path}?${query}`, headers: headersOf(target) };
    }
  };
}
