import { randomBytes, createHash } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Uniform base62 string from the CSPRNG (rejection sampling avoids modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Opaque, unguessable job id: 24 base62 characters ≈ 143 bits. */
export const newJobId = (): string => `job_${randomBase62(24)}`;

export const sha256Hex = (input: string | Buffer): string => createHash('sha256').update(input).digest('hex');

/**
 * The webhook message id of one event of one job. Deterministic, so a job processed
 * twice (at-least-once delivery) announces itself with the same `webhook-id`.
 */
export const webhookMessageId = (jobId: string, eventType: string): string =>
  `msg_${sha256Hex(`${jobId}:${eventType}`).slice(0, 32)}`;
