import { describe, expect, it } from 'vitest';
import { CsvError, csvLine, csvRows, parseCsv } from './csv.ts';

async function collect(rows: AsyncIterable<string[]>): Promise<string[][]> {
  const all: string[][] = [];
  for await (const row of rows) all.push(row);
  return all;
}

/** `bytes` as a stream of slices of `size` bytes, counting how many were read. */
function slices(bytes: Buffer, size: number): { source: AsyncGenerator<Buffer>; read: () => number } {
  let read = 0;
  async function* source() {
    for (let at = 0; at < bytes.length; at += size) {
      read += 1;
      yield bytes.subarray(at, at + size);
    }
  }
  return { source: source(), read: () => read };
}

describe('parseCsv', () => {
  it('splits rows and fields, with CRLF or LF line ends', () => {
    expect(parseCsv('a,b\r\n1,2\n3,4')).toEqual([
      ['a', 'b'],
      ['1', '2'],
      ['3', '4'],
    ]);
  });

  it('reads quoted fields with commas, doubled quotes and line breaks', () => {
    expect(parseCsv('x,y\n"a,b","say ""hi""\nthere"\n')).toEqual([
      ['x', 'y'],
      ['a,b', 'say "hi"\nthere'],
    ]);
  });

  it('keeps empty fields and skips blank lines and a BOM', () => {
    expect(parseCsv('\ufeffa,,c\n\n,\n')).toEqual([
      ['a', '', 'c'],
      ['', ''],
    ]);
  });

  it('refuses an unclosed quote', () => {
    expect(() => parseCsv('a,"b\n')).toThrow(/not closed/);
  });

  it('writes what it reads', () => {
    const values = ['plain', 'a,b', 'q"uote', 'line\nbreak'];
    expect(parseCsv(csvLine(values))).toEqual([values]);
  });

  it('prefixes a field a spreadsheet would run as a formula with a quote mark', () => {
    const formulas = ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\tx', '\rx'];
    expect(parseCsv(csvLine(formulas))).toEqual([formulas.map((value) => `'${value}`)]);
    expect(csvLine(['a=1', 'x-1', '1e+3', ''])).toBe('a=1,x-1,1e+3,\r\n');
  });
});

describe('csvRows', () => {
  const text =
    '\ufeffimage_url,client_ref,note\r\nhttps://a.example/1.jpg,"A,1","sa""y\r\nhi"\r\n\r\nhttps://a.example/2.jpg,Ünïcødé ✓,\nx\ry\n';

  it('yields the same rows as the whole-text reader, however the bytes are sliced', async () => {
    const expected = parseCsv(text);
    expect(expected).toEqual([
      ['image_url', 'client_ref', 'note'],
      ['https://a.example/1.jpg', 'A,1', 'sa"y\r\nhi'],
      ['https://a.example/2.jpg', 'Ünïcødé ✓', ''],
      ['x'],
      ['y'],
    ]);
    for (const size of [1, 2, 3, 7, 64])
      expect(await collect(csvRows(slices(Buffer.from(text), size).source, { maxRowBytes: 1024 }))).toEqual(expected);
  });

  it('stops reading its source when the caller stops', async () => {
    const manyRows = Buffer.from(`image_url\n${'https://a.example/x.jpg\n'.repeat(100_000)}`);
    const { source, read } = slices(manyRows, 1024);
    let rows = 0;
    for await (const _row of csvRows(source, { maxRowBytes: 1024 })) if (++rows === 10) break;
    expect(read()).toBeLessThan(100);
    expect(read()).toBeGreaterThan(0);
  });

  it('refuses a row longer than the limit and an unclosed quote, naming the row', async () => {
    const long = csvRows(slices(Buffer.from(`a,b\nc,d\n${'x'.repeat(5000)}\n`), 100).source, { maxRowBytes: 1000 });
    await expect(collect(long)).rejects.toThrow(new CsvError('a row is longer than 1000 bytes', 3));
    const unclosed = csvRows(slices(Buffer.from('a,b\n\nc,"d\n'), 4).source, { maxRowBytes: 1000 });
    await expect(collect(unclosed)).rejects.toThrow('a quoted field is not closed (row 2)');
  });

  it('passes an error of its source through unchanged', async () => {
    const failure = new Error('source gave up');
    async function* failing() {
      yield Buffer.from('a,b\n');
      throw failure;
    }
    await expect(collect(csvRows(failing(), { maxRowBytes: 1000 }))).rejects.toBe(failure);
  });
});
