import { describe, expect, it } from 'vitest';
import { csvLine, parseCsv } from './csv.ts';

describe('parseCsv', () => {
  it('splits rows and fields, with CRLF or LF line ends', () => {
    expect(parseCsv('a,b\r\n1,2\n3,4')).toEqual([['a', 'b'], ['1', '2'], ['3', '4']]);
  });

  it('reads quoted fields with commas, doubled quotes and line breaks', () => {
    expect(parseCsv('x,y\n"a,b","say ""hi""\nthere"\n')).toEqual([['x', 'y'], ['a,b', 'say "hi"\nthere']]);
  });

  it('keeps empty fields and skips blank lines and a BOM', () => {
    expect(parseCsv('\ufeffa,,c\n\n,\n')).toEqual([['a', '', 'c'], ['', '']]);
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
