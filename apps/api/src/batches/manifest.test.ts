import { describe, expect, it } from 'vitest';
import { MAX_MANIFEST_ROW_BYTES, manifestFormatOf, readManifest } from './manifest.ts';
import type { BatchItem } from './items.ts';

const limits = { policy: { allowPrivate: [] }, maxBytes: 1_000_000 };

async function* chunks(text: string, size = 5): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function rowsOf(text: string, format: 'csv' | 'ndjson', size?: number): Promise<[number, BatchItem | string][]> {
  const rows: [number, BatchItem | string][] = [];
  await readManifest(chunks(text, size), format, limits, async (row, item) => void rows.push([row, item]));
  return rows;
}

describe('JSON-lines manifests', () => {
  it('read one item per line, LF or CRLF, skipping blank lines and a BOM, numbering the others from 1', async () => {
    const text =
      '\ufeff{"image_url":"https://cdn.example.com/a.jpg","client_ref":"A"}\r\n\n{"image_url":"https://cdn.example.com/b.jpg","metadata":{"colour":"red"}}\n   \n{"image_url":"https://cdn.example.com/c.jpg"}';
    expect(await rowsOf(text, 'ndjson')).toEqual([
      [1, { kind: 'url', imageUrl: 'https://cdn.example.com/a.jpg', clientRef: 'A', metadata: undefined }],
      [
        2,
        { kind: 'url', imageUrl: 'https://cdn.example.com/b.jpg', clientRef: undefined, metadata: { colour: 'red' } },
      ],
      [3, { kind: 'url', imageUrl: 'https://cdn.example.com/c.jpg', clientRef: undefined, metadata: undefined }],
    ]);
  });

  it('reject a line that is not JSON or not an item, and go on', async () => {
    const text =
      '{"image_url":"https://cdn.example.com/a.jpg"}\n{"image_url": oops}\n["x"]\n{"image_url":"http://10.0.0.1/x.png"}\n{"image_url":"https://cdn.example.com/e.jpg"}\n';
    const rows = await rowsOf(text, 'ndjson', 3);
    expect(rows.map(([row, item]) => [row, typeof item === 'string' ? item.split(':')[0] : item.kind])).toEqual([
      [1, 'url'],
      [2, 'the line is not valid JSON'],
      [3, 'the item must be an object with an image_url'],
      [4, 'invalid_image_url'],
      [5, 'url'],
    ]);
  });

  it('refuse a line longer than a row may be, and an empty manifest', async () => {
    const long = `{"image_url":"https://cdn.example.com/a.jpg"}\n{"metadata":"${'x'.repeat(MAX_MANIFEST_ROW_BYTES)}"}\n`;
    await expect(rowsOf(long, 'ndjson', 4096)).rejects.toMatchObject({
      code: 'invalid_manifest',
      message: expect.stringContaining('(line 2)'),
    });
    await expect(rowsOf('\n\r\n', 'ndjson')).rejects.toMatchObject({
      code: 'invalid_manifest',
      message: 'the manifest is empty',
    });
  });

  it('stop with 413 at the first byte past the size limit', async () => {
    const rows: number[] = [];
    const text = Array.from({ length: 100 }, (_, i) => `{"image_url":"https://cdn.example.com/${i}.jpg"}\n`).join('');
    await expect(
      readManifest(chunks(text, 100), 'ndjson', { ...limits, maxBytes: 1_000 }, async (row) => void rows.push(row)),
    ).rejects.toMatchObject({ code: 'file_too_large' });
    expect(rows.length).toBeLessThan(25);
  });

  it('are told from CSV by media type or file name', () => {
    expect(manifestFormatOf('application/x-ndjson; charset=utf-8')).toBe('ndjson');
    expect(manifestFormatOf('application/octet-stream', 'catalog.jsonl')).toBe('ndjson');
    expect(manifestFormatOf('text/csv', 'catalog.csv')).toBe('csv');
    expect(manifestFormatOf(undefined)).toBe('csv');
  });
});
