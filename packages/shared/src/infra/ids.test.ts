import { describe, expect, it } from 'vitest';
import { newJobId, randomBase62, sha256Hex, webhookMessageId } from './ids.ts';

describe('newJobId', () => {
  it('is job_ followed by 24 base62 characters', () => {
    for (let i = 0; i < 1_000; i += 1) expect(newJobId()).toMatch(/^job_[0-9A-Za-z]{24}$/);
  });

  it('never repeats over many ids', () => {
    const ids = new Set(Array.from({ length: 50_000 }, () => newJobId()));

    expect(ids.size).toBe(50_000);
  });

  it('uses the whole base62 alphabet', () => {
    const seen = new Set(Array.from({ length: 500 }, () => newJobId().slice(4)).join(''));

    expect(seen.size).toBe(62);
  });
});

describe('randomBase62', () => {
  it('returns exactly the length asked for', () => {
    for (const length of [0, 1, 7, 24, 100])
      expect(randomBase62(length)).toMatch(new RegExp(`^[0-9A-Za-z]{${length}}$`));
  });
});

describe('webhookMessageId', () => {
  it('is the same for the same job and event', () => {
    expect(webhookMessageId('job_abc', 'job.succeeded')).toBe(webhookMessageId('job_abc', 'job.succeeded'));
    expect(webhookMessageId('job_abc', 'job.succeeded')).toMatch(/^msg_[0-9a-f]{32}$/);
  });

  it('differs across events of one job and across jobs', () => {
    const ids = new Set([
      webhookMessageId('job_abc', 'job.succeeded'),
      webhookMessageId('job_abc', 'job.failed'),
      webhookMessageId('job_abd', 'job.succeeded'),
    ]);

    expect(ids.size).toBe(3);
  });
});

describe('sha256Hex', () => {
  it('gives the standard SHA-256 digest of strings and buffers', () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

    expect(sha256Hex('abc')).toBe(abc);
    expect(sha256Hex(Buffer.from('abc'))).toBe(abc);
  });
});
