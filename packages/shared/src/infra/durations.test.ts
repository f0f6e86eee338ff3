import { describe, expect, it } from 'vitest';
import { formatDuration, parseBytes, parseDuration } from './durations.ts';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['0', 0],
    ['1500', 1_500],
    ['1.5s', 1_500],
    ['0.5m', 30_000],
    [' 10 s ', 10_000],
    ['2H', 7_200_000],
    ['250MS', 250],
  ])('reads %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', ' ', 'soon', '5x', '-5s', '5 s s', 's5', '1,5s', '1e3', '5sec', '.5s', '5y'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('parseBytes', () => {
  it.each([
    ['1048576', 1_048_576],
    ['0', 0],
    ['100b', 100],
    ['1KB', 1_000],
    ['25MB', 25_000_000],
    ['2GB', 2_000_000_000],
    ['512KiB', 524_288],
    ['10MiB', 10_485_760],
    ['1GiB', 1_073_741_824],
    ['1.5MB', 1_500_000],
    [' 25 mb ', 25_000_000],
    ['4kib', 4_096],
  ])('reads %j as %d bytes', (text, bytes) => {
    expect(parseBytes(text)).toBe(bytes);
  });

  it.each(['', 'lots', '25M', '10TB', '-1MB', 'MB', '1,5MB', '25 MB B', '5KiBs'])('rejects %j', (text) => {
    expect(parseBytes(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [86_400_000, '24 h'],
    [5_400_000, '1.5 h'],
    [90_000, '1.5 min'],
    [60_000, '1 min'],
    [45_000, '45 s'],
    [1_500, '1.5 s'],
    [300, '300 ms'],
  ])('says %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
