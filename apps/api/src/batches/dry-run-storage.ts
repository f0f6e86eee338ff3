import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Storage, StreamedObject } from '@cutout/shared/infra';

const refuse = async (): Promise<never> => {
  throw new Error('a dry run reads and writes no stored object');
};

// biome-ignore lint/correctness/useYield: it refuses before it could yield anything
async function* refuseAll(): AsyncGenerator<never> {
  throw new Error('a dry run reads and writes no stored object');
}

/**
 * The storage a dry run's files stream into: each is read to its end, so it is checked
 * exactly as a real upload is (type, pixels, size, completeness), and hashed, so its
 * duplicates can be found; nothing is kept and S3 is never called.
 */
export function makeDryRunStorage(): Storage {
  return {
    async putStream(_key: string, body: Readable, contentType: string): Promise<StreamedObject> {
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of body) {
        bytes += (chunk as Buffer).length;
        hash.update(chunk as Buffer);
      }
      return { bytes, contentType, sha256: hash.digest('hex') };
    },
    delete: async () => undefined,
    putBuffer: refuse,
    getStream: refuse,
    getBuffer: refuse,
    head: refuse,
    copy: refuse,
    presign: refuse,
    presignPuts: refuseAll,
    list: refuseAll,
    deleteMany: refuse,
    ensureBucket: refuse,
    ping: refuse,
  };
}
