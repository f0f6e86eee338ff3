import { describe, expect, it } from 'vitest';
import { parseArgs } from './args.ts';
import { resultFileName } from './batch-run.ts';

describe('cutout arguments', () => {
  it('reads the command, positionals, flags with values and switches in any order', () => {
    expect(parseArgs(['batch', '--out', 'o', './photos', '--json', '--chunk=20'])).toEqual({
      command: 'batch',
      positionals: ['./photos'],
      flags: { out: 'o', json: true, chunk: '20' },
    });
  });

  it('refuses a flag without its value', () => {
    expect(() => parseArgs(['batch', 'x', '--out'])).toThrow(/--out needs a value/);
  });

  it('names a result after its item, as a .png, never as a path', () => {
    expect(resultFileName('shoe-01.jpg')).toBe('shoe-01.png');
    expect(resultFileName('SKU/42')).toBe('SKU_42.png');
    expect(resultFileName('..hidden')).toBe('_hidden.png');
  });
});
