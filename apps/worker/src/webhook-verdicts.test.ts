import { describe, expect, it } from 'vitest';
import { UnsafeUrlError } from '@cutout/shared/security';
import { outcomeOfError, outcomeOfResponse } from './webhook-verdicts.ts';

const answer = (statusCode: number, retryAfterMs?: number) => ({ statusCode, retryAfterMs, body: '' });

describe('outcomeOfResponse', () => {
  it.each([200, 201, 202, 204, 299])('counts %i as delivered', (status) => {
    expect(outcomeOfResponse(answer(status))).toEqual({
      verdict: 'delivered',
      statusCode: status,
      error: null,
      health: 'up',
    });
  });

  it.each([301, 302, 307, 308])('retries a %i without following it', (status) => {
    expect(outcomeOfResponse(answer(status))).toEqual({
      verdict: 'retry',
      statusCode: status,
      error: `receiver answered ${status}; redirects are not followed`,
      health: 'up',
    });
  });

  it.each([400, 404, 408, 500, 502, 504])('retries a %i', (status) => {
    expect(outcomeOfResponse(answer(status))).toMatchObject({ verdict: 'retry', error: `receiver answered ${status}` });
  });

  it('gives up on 410 Gone', () => {
    expect(outcomeOfResponse(answer(410))).toEqual({
      verdict: 'give_up',
      statusCode: 410,
      error: 'endpoint gone (410)',
      health: 'up',
    });
  });

  it.each([
    [500, 'down'],
    [503, 'down'],
    [504, 'down'],
    [429, 'up'],
    [404, 'up'],
    [400, 'up'],
  ])('counts a %i as the endpoint %s for its circuit', (status, health) => {
    expect(outcomeOfResponse(answer(status)).health).toBe(health);
  });

  it('honours Retry-After on 429 and 503 only', () => {
    expect(outcomeOfResponse(answer(429, 30_000)).retryAfterMs).toBe(30_000);
    expect(outcomeOfResponse(answer(503, 30_000)).retryAfterMs).toBe(30_000);
    expect(outcomeOfResponse(answer(500, 30_000)).retryAfterMs).toBeUndefined();
  });
});

describe('outcomeOfError', () => {
  it('gives up on an address the SSRF guard refuses, without naming the address', () => {
    const outcome = outcomeOfError(
      new UnsafeUrlError('private_address', 'hooks.example.com resolves to 10.1.2.3, which is not a public address'),
      1_000,
    );

    expect(outcome).toMatchObject({ verdict: 'give_up', statusCode: null, health: 'unknown' });
    expect(outcome.error).toMatch(/^address not allowed/);
    expect(outcome.error).not.toContain('10.1.2.3');
  });

  it('retries a host name that resolved to no address', () => {
    expect(outcomeOfError(new UnsafeUrlError('unresolvable', 'x resolved to no address'), 1_000).verdict).toBe('retry');
  });

  it('retries a timeout, saying how long it waited', () => {
    expect(outcomeOfError(new DOMException('timed out', 'TimeoutError'), 1_500)).toEqual({
      verdict: 'retry',
      statusCode: null,
      error: 'no answer within 1500 ms',
      health: 'down',
    });
  });

  it('retries a connection error, naming its code', () => {
    expect(outcomeOfError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 1_000)).toEqual({
      verdict: 'retry',
      statusCode: null,
      error: 'connection failed (ECONNREFUSED)',
      health: 'down',
    });
  });
});
