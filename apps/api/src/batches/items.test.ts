import { describe, expect, it } from 'vitest';
import { parseCsv } from '../intake/csv.ts';
import { manifestColumns, manifestItem, sanitizeFileName, urlItem } from './items.ts';

const policy = { allowPrivate: [] };

describe('batch items', () => {
  it('turns CSV rows into URL items, extra columns into metadata, and says why a row is bad', () => {
    const [header, ...rows] = parseCsv(
      'image_url, client_ref ,colour,size\nhttps://cdn.example.com/a.jpg,A-1,red,\nhttp://10.0.0.1/b.jpg,B-2,,\n,C-3,blue,L\na,b,c,d,e\n',
    );
    const columns = manifestColumns(header!);
    if (typeof columns === 'string') throw new Error(columns);
    expect(rows.map((row) => manifestItem(columns, row, policy))).toEqual([
      { kind: 'url', imageUrl: 'https://cdn.example.com/a.jpg', clientRef: 'A-1', metadata: { colour: 'red' } },
      expect.stringMatching(/^invalid_image_url/),
      'image_url is missing',
      'the row has 5 fields; the header names 4',
    ]);
  });

  it('refuses a manifest without an image_url column', () => {
    expect(manifestColumns(['url', 'sku'])).toBe('the manifest header has no image_url column');
  });

  it('refuses unknown fields, bad metadata and long client_refs in JSON items', () => {
    expect(urlItem({ image_url: 'https://a.example/x.png', extra: 1 }, policy)).toBe('unknown field "extra"');
    expect(urlItem({ image_url: 'https://a.example/x.png', metadata: [1] }, policy)).toBe(
      'metadata must be a JSON object',
    );
    expect(urlItem({ image_url: 'https://a.example/x.png', client_ref: 'x'.repeat(300) }, policy)).toMatch(
      /client_ref/,
    );
  });

  it('keeps only the base name of an uploaded file, with unsafe characters replaced', () => {
    expect(sanitizeFileName('../../etc/pa$$wd.png', 'file-1')).toBe('pa__wd.png');
    expect(sanitizeFileName('C:\\photos\\shoe 1.jpg', 'file-1')).toBe('shoe 1.jpg');
    expect(sanitizeFileName(undefined, 'file-7')).toBe('file-7');
  });
});
