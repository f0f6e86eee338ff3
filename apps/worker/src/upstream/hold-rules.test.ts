import { describe, expect, it } from 'vitest';
import type { ProbeOutcome } from '../bybybg/client.ts';
import { holdExpired, probeClears, probeRaises } from './hold-rules.ts';

const answered = (status: number): ProbeOutcome => ({ kind: 'answered', status });

describe('what a probe answer means for each hold', () => {
  it.each<[string, ProbeOutcome, boolean, boolean, string | null]>([
    // answer, clears the key hold, clears the credit hold, raises
    ['200', answered(200), true, true, null],
    ['400 (the probe image refused)', answered(400), true, true, null],
    ['403', answered(403), true, true, null],
    ['402', answered(402), true, false, 'upstream_out_of_credit'],
    ['429', answered(429), true, false, null],
    ['503', answered(503), true, false, null],
    ['every key 401', { kind: 'unauthorized' }, false, false, 'upstream_unauthorized'],
    ['no answer', { kind: 'unreachable' }, false, false, null],
  ])('%s', (_, outcome, clearsKey, clearsCredit, raises) => {
    expect(probeClears('upstream_unauthorized', outcome)).toBe(clearsKey);
    expect(probeClears('upstream_out_of_credit', outcome)).toBe(clearsCredit);
    expect(probeRaises(outcome)).toBe(raises);
  });
});

describe('holdExpired', () => {
  const problem = { since: '2026-11-26T00:00:00.000Z', message: '402' };
  const at = (iso: string) => Date.parse(iso);

  it('ends a hold with a budget once it has lasted that long', () => {
    expect(
      holdExpired(problem, { probeIntervalMs: 60_000, budgetMs: 86_400_000 }, at('2026-11-26T23:59:59.000Z')),
    ).toBe(false);
    expect(
      holdExpired(problem, { probeIntervalMs: 60_000, budgetMs: 86_400_000 }, at('2026-11-27T00:00:00.000Z')),
    ).toBe(true);
  });

  it('never ends a hold without a budget', () => {
    expect(holdExpired(problem, { probeIntervalMs: 60_000 }, at('2027-11-26T00:00:00.000Z'))).toBe(false);
  });
});
