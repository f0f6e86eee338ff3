import { describe, expect, it } from 'vitest';
import { signReviewToken, verifyReviewToken } from './tokens.ts';

const SECRET = 'a-review-secret-of-enough-length-0123456789';
const BATCH = 'batch_0123456789ABCDEFGHIJabcd';

describe('review link tokens', () => {
  it('round-trips a batch and a job until they expire', () => {
    const now = Date.now();
    const token = signReviewToken(SECRET, { kind: 'batch', id: BATCH }, now + 60_000, now);
    expect(token.length).toBeLessThan(100);
    expect(verifyReviewToken(SECRET, token, now)).toEqual({
      ok: true,
      grant: { kind: 'batch', id: BATCH, issuedAtMs: now, expiresAtMs: Math.floor((now + 60_000) / 1000) * 1000 },
    });
    const job = signReviewToken(SECRET, { kind: 'job', id: 'job_0123456789ABCDEFGHIJabcd' }, now + 60_000);
    expect(verifyReviewToken(SECRET, job, now)).toMatchObject({
      ok: true,
      grant: { kind: 'job', id: 'job_0123456789ABCDEFGHIJabcd' },
    });
    expect(verifyReviewToken(SECRET, token, now + 61_000)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses every single-character change, another secret and other shapes', () => {
    const token = signReviewToken(SECRET, { kind: 'batch', id: BATCH }, Date.now() + 60_000);
    const alphabet = 'ABCabc019_-.';
    for (let i = 0; i < token.length; i += 1) {
      for (const char of alphabet) {
        if (char === token[i]) continue;
        const changed = `${token.slice(0, i)}${char}${token.slice(i + 1)}`;
        expect(verifyReviewToken(SECRET, changed).ok, changed).toBe(false);
      }
    }
    expect(verifyReviewToken('another-secret-of-enough-length-012345678', token).ok).toBe(false);
    for (const bad of ['', 'rvw_', `${token}x`, `x${token}`, 'ck_live_0123456789', token.replace('rvw_', 'RVW_')]) {
      expect(verifyReviewToken(SECRET, bad).ok).toBe(false);
    }
  });

  it('refuses to sign anything but a batch or job id', () => {
    expect(() => signReviewToken(SECRET, { kind: 'batch', id: 'batch_../../etc' }, Date.now() + 1)).toThrow();
  });
});
