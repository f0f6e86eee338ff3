import { describe, expect, it } from 'vitest';
import { decideFault, latencyFor, makeFaultSettings, parseFaultPatch } from './faults.ts';

/** A random source that replays the given draws. */
const draws =
  (...values: number[]) =>
  () => {
    const value = values.shift();
    if (value === undefined) throw new Error('ran out of draws');
    return value;
  };

describe('fault settings', () => {
  it('accepts a partial update', () => {
    expect(parseFaultPatch({ errorRate: 0.5, rateLimit: null })).toEqual({
      ok: true,
      value: { errorRate: 0.5, rateLimit: null },
    });
  });

  it('rejects out-of-range rates, unknown modes and unknown fields, naming each', () => {
    const result = parseFaultPatch({ errorRate: 2, responseMode: 'xml', typo: 1 });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.message).toContain('errorRate');
    expect(result.message).toContain('responseMode');
    expect(result.message).toContain('typo');
  });

  it('rejects a body that is not an object', () => {
    expect(parseFaultPatch('errorRate=1').ok).toBe(false);
    expect(parseFaultPatch(null).ok).toBe(false);
  });
});

describe('decideFault', () => {
  it('answers nothing special when every rate is 0, without drawing', () => {
    expect(decideFault(makeFaultSettings(), draws())).toEqual({ kind: 'none' });
  });

  it('injects each fault for the fraction of draws below its rate', () => {
    const settings = makeFaultSettings({ errorRate: 0.5 });
    expect(decideFault(settings, draws(0.4, 0))).toEqual({ kind: 'error', status: 500 });
    expect(decideFault(settings, draws(0.4, 0.5))).toEqual({ kind: 'error', status: 502 });
    expect(decideFault(settings, draws(0.4, 0.99))).toEqual({ kind: 'error', status: 503 });
    expect(decideFault(settings, draws(0.6))).toEqual({ kind: 'none' });
  });

  it('makes a fault certain at rate 1 whatever the draw', () => {
    expect(decideFault(makeFaultSettings({ hangRate: 1, errorRate: 1 }), draws(0.999))).toEqual({ kind: 'hang' });
    expect(decideFault(makeFaultSettings({ truncateRate: 1 }), draws(0.999))).toEqual({ kind: 'truncate' });
  });
});

describe('latencyFor', () => {
  it('adds a uniform jitter of 0..jitter to the fixed latency', () => {
    const settings = makeFaultSettings({ latencyMs: 100, latencyJitterMs: 50 });
    expect(latencyFor(settings, draws(0))).toBe(100);
    expect(latencyFor(settings, draws(0.999999))).toBe(150);
    expect(latencyFor(makeFaultSettings({ latencyMs: 20 }), draws())).toBe(20);
  });
});
