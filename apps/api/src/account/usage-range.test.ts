import { describe, expect, it } from 'vitest';
import { ApiError } from '../http/errors.ts';
import { usageRange } from './usage-range.ts';

const NOW = Date.parse('2026-11-26T15:00:00.000Z');

describe('usageRange', () => {
  it('defaults to the 30 days up to today', () => {
    expect(usageRange({}, NOW)).toEqual({ from: '2026-10-28', to: '2026-11-26' });
    expect(usageRange({ to: '2026-11-10' }, NOW)).toEqual({ from: '2026-10-23', to: '2026-11-10' });
  });

  it('takes a range of up to the 35 days kept', () => {
    expect(usageRange({ from: '2026-10-23', to: '2026-11-26' }, NOW)).toEqual({ from: '2026-10-23', to: '2026-11-26' });
    expect(usageRange({ from: '2026-11-26', to: '2026-11-26' }, NOW)).toEqual({ from: '2026-11-26', to: '2026-11-26' });
  });

  it.each([
    ['a date that is not YYYY-MM-DD', { from: '26/11/2026' }, 'from must be a UTC date as YYYY-MM-DD, e.g. 2026-11-01'],
    ['a day that does not exist', { to: '2026-02-30' }, 'to must be a UTC date as YYYY-MM-DD, e.g. 2026-11-01'],
    [
      'a date given twice',
      { from: ['2026-11-01', '2026-11-02'] },
      'from must be a UTC date as YYYY-MM-DD, e.g. 2026-11-01',
    ],
    ['a reversed range', { from: '2026-11-20', to: '2026-11-10' }, 'from (2026-11-20) is after to (2026-11-10)'],
    [
      'a range over 35 days',
      { from: '2026-10-01', to: '2026-11-20' },
      'A range covers at most 35 days; 2026-10-01 to 2026-11-20 is 51',
    ],
    [
      'a day no longer kept',
      { from: '2026-10-20', to: '2026-10-25' },
      'Usage is kept for 35 days: from must be 2026-10-23 or later',
    ],
    ['a day after today', { to: '2026-11-27' }, 'to must not be after today (2026-11-26, UTC)'],
  ])('refuses %s with 400 invalid_request', (_, query, message) => {
    let error: unknown;
    try {
      usageRange(query, NOW);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ statusCode: 400, code: 'invalid_request', message });
  });
});
