import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

/** s3rver's fixed development credentials. */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface EmbeddedS3 {
  endpoint: string;
  /** Calls `listener` with the method and path of every request until the returned function is called (the benchmark counts S3 calls). */
  observe(listener: (method: string, path: string) => void): () => void;
  close(): Promise<void>;
}

/**
 * An S3-protocol server on loopback, storing objects under `directory`: the default
 * for `npm start` and the tests when no S3_ENDPOINT is given.
 */
export async function startEmbeddedS3({
  directory,
  bucket,
  port = 0,
}: {
  directory: string;
  bucket: string;
  port?: number;
}): Promise<EmbeddedS3> {
  const server = new S3rver({
    address: '127.0.0.1',
    port,
    directory,
    silent: true,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const address = (await server.run()) as AddressInfo;
  const http = (server as unknown as { httpServer: Server }).httpServer;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    observe(listener) {
      const onRequest = (request: IncomingMessage) => listener(request.method ?? '', request.url ?? '');
      http.on('request', onRequest);
      return () => void http.off('request', onRequest);
    },
    async close() {
      http.closeAllConnections();
      await server.close();
    },
  };
}
