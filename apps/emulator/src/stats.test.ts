import { describe, expect, it } from 'vitest';
import { makeStats, maskKey } from './stats.ts';

describe('stats', () => {
  it('masks long keys as first 4 … last 4 and short keys almost entirely', () => {
    expect(maskKey('ab12cdef34569f3e')).toBe('ab12…9f3e');
    expect(maskKey('short-key')).toBe('sh…(9)');
    expect(maskKey(undefined)).toBe('(none)');
  });

  it('counts outcomes per status and per masked key', () => {
    const stats = makeStats();
    stats.record('alpha-key-000001', '200');
    stats.record('alpha-key-000001', '429');
    stats.record('alpha-key-000001', '200');
    stats.record(undefined, '401');
    expect(stats.snapshot()).toEqual({
      total: 4,
      inFlight: 0,
      byStatus: { '200': 2, '429': 1, '401': 1 },
      byKey: { 'alph…0001': { '200': 2, '429': 1 }, '(none)': { '401': 1 } },
    });
  });

  it('tracks calls in flight, ending each once', () => {
    const stats = makeStats();
    const end = stats.begin();
    stats.begin();
    expect(stats.snapshot().inFlight).toBe(2);
    end();
    end();
    expect(stats.snapshot().inFlight).toBe(1);
  });

  it('resets the counters', () => {
    const stats = makeStats();
    stats.record('alpha-key-000001', '200');
    stats.reset();
    expect(stats.snapshot()).toEqual({ total: 0, inFlight: 0, byStatus: {}, byKey: {} });
  });
});
