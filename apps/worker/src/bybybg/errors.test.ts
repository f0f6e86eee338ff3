import { errors as undiciErrors } from 'undici';
import { describe, expect, it } from 'vitest';
import {
  UpstreamError,
  classifyNetworkError,
  classifyStatus,
  neverSent,
  parseRateLimitHeaders,
  parseRetryAfter,
} from './errors.ts';

describe('classifyStatus', () => {
  it.each([200, 201, 204])('treats %i as success', (status) => {
    expect(classifyStatus(status)).toBeNull();
  });

  it.each([
    [429, 'rate_limited', 'upstream_rate_limited'],
    [500, 'transient', 'upstream_unavailable'],
    [502, 'transient', 'upstream_unavailable'],
    [503, 'transient', 'upstream_unavailable'],
    [504, 'transient', 'upstream_unavailable'],
    [507, 'transient', 'upstream_unavailable'],
    [408, 'transient', 'upstream_unavailable'],
    [425, 'transient', 'upstream_unavailable'],
    [401, 'unauthorized', 'upstream_unauthorized'],
    [402, 'out_of_credit', 'upstream_out_of_credit'],
    [403, 'permanent', 'upstream_forbidden'],
    [400, 'permanent', 'upstream_rejected'],
    [413, 'permanent', 'upstream_rejected'],
    [422, 'permanent', 'upstream_rejected'],
    [302, 'permanent', 'upstream_bad_response'],
  ])('classifies %i as %s', (status, kind, code) => {
    expect(classifyStatus(status)).toEqual({ kind, code });
  });
});

describe('classifyNetworkError', () => {
  it.each([
    'ECONNREFUSED',
    'ECONNRESET',
    'EPIPE',
    'ENOTFOUND',
    'EAI_AGAIN',
    'UND_ERR_SOCKET',
    'UND_ERR_CLOSED',
    'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  ])('treats %s as a connection failure', (code) => {
    expect(classifyNetworkError(Object.assign(new Error('whatever the text says'), { code }))).toBe('connection');
  });

  it('recognises timeouts by their undici class', () => {
    expect(classifyNetworkError(new undiciErrors.HeadersTimeoutError())).toBe('timeout');
    expect(classifyNetworkError(new undiciErrors.BodyTimeoutError())).toBe('timeout');
    expect(classifyNetworkError(new undiciErrors.ConnectTimeoutError())).toBe('timeout');
  });

  it('recognises an AbortSignal.timeout() rejection', () => {
    expect(classifyNetworkError(new DOMException('gone', 'TimeoutError'))).toBe('timeout');
  });

  it('finds the code on a wrapped cause', () => {
    const wrapped = new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) });
    expect(classifyNetworkError(wrapped)).toBe('connection');
  });

  it('ignores the message text', () => {
    expect(classifyNetworkError(new Error('connect ECONNREFUSED 127.0.0.1:80'))).toBeNull();
    expect(classifyNetworkError(new undiciErrors.InvalidArgumentError('bad header'))).toBeNull();
  });
});

describe('neverSent', () => {
  it.each(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT'])(
    'knows a request that failed with %s never left',
    (code) => {
      expect(neverSent(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code }) }))).toBe(true);
    },
  );

  it.each(['ECONNRESET', 'EPIPE', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_SOCKET'])(
    'counts a request that failed with %s as sent: ByByBG may have processed it',
    (code) => {
      expect(neverSent(Object.assign(new Error('x'), { code }))).toBe(false);
    },
  );

  it('ignores the message text', () => {
    expect(neverSent(new Error('connect ECONNREFUSED 127.0.0.1:80'))).toBe(false);
  });
});

describe('UpstreamError', () => {
  it('is retryable unless permanent', () => {
    const make = (kind: 'rate_limited' | 'transient' | 'unauthorized' | 'permanent') =>
      new UpstreamError({ kind, code: 'upstream_unavailable', message: 'x' });
    expect(
      ['rate_limited', 'transient', 'unauthorized', 'permanent'].map((kind) => make(kind as never).retryable),
    ).toEqual([true, true, true, false]);
  });

  it('carries status and retry delay only when given', () => {
    const error = new UpstreamError({
      kind: 'rate_limited',
      code: 'upstream_rate_limited',
      message: 'slow',
      status: 429,
      retryAfterMs: 1500,
    });
    expect(error).toMatchObject({ name: 'UpstreamError', status: 429, retryAfterMs: 1500, message: 'slow' });
    expect(new UpstreamError({ kind: 'transient', code: 'upstream_unavailable', message: 'x' }).status).toBeUndefined();
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter(['2', '9'], now)).toBe(2000);
  });

  it('reads an HTTP date relative to now', () => {
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:01:00 GMT', now)).toBe(60_000);
  });

  it('treats a date in the past as "now"', () => {
    expect(parseRetryAfter('Mon, 31 Dec 2029 23:59:00 GMT', now)).toBe(0);
  });

  it.each([undefined, '', '-5', 'soon', '1e3'])('ignores %j', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe('parseRateLimitHeaders', () => {
  it('reads limit, remaining and seconds until reset', () => {
    expect(
      parseRateLimitHeaders({ 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '12' }),
    ).toEqual({ limit: 60, remaining: 0, resetMs: 12_000 });
  });

  it('returns nothing when the headers are absent or malformed', () => {
    expect(parseRateLimitHeaders({ 'content-type': 'image/png', 'x-ratelimit-limit': 'lots' })).toEqual({});
  });

  it('accepts any casing and the draft "100, 100;w=60" shape', () => {
    expect(parseRateLimitHeaders({ 'X-RateLimit-Limit': '100, 100;w=60' })).toEqual({ limit: 100 });
  });

  it('reads a reset given as an epoch time', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRateLimitHeaders({ 'x-ratelimit-reset': String(now / 1000 + 30) }, now)).toEqual({ resetMs: 30_000 });
  });
});
