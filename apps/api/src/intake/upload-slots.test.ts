import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Storage } from '@cutout/shared/infra';
import { withUploadSlots } from './upload-slots.ts';

describe('withUploadSlots', () => {
  it('streams at most `slots` uploads at once and lets the others wait their turn', async () => {
    let streaming = 0;
    let most = 0;
    const releases: (() => void)[] = [];
    const storage = {
      async putStream(_key: string, _body: Readable, contentType: string) {
        streaming += 1;
        most = Math.max(most, streaming);
        await new Promise<void>((resolve) => releases.push(resolve));
        streaming -= 1;
        return { bytes: 1, contentType, sha256: 'x' };
      },
      delete: async () => undefined,
    } as unknown as Storage;
    const limited = withUploadSlots(storage, 2);
    const uploads = Array.from({ length: 5 }, (_, i) => limited.putStream(`k${i}`, Readable.from([]), 'image/png'));
    for (let released = 0; released < 5; released++) {
      await new Promise((resolve) => setImmediate(resolve));
      expect(streaming).toBeLessThanOrEqual(2);
      releases.shift()!();
    }
    expect(await Promise.all(uploads)).toHaveLength(5);
    expect(most).toBe(2);
  });

  it('passes everything else straight through', async () => {
    const deleted: string[] = [];
    const limited = withUploadSlots({ delete: async (key: string) => void deleted.push(key) } as unknown as Storage, 1);
    await limited.delete('a');
    expect(deleted).toEqual(['a']);
  });
});
