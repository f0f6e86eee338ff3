import { hash, randomFillSync } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** CSPRNG bytes drawn 4 KiB at a time: one system call per ~80 ids instead of one per id. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function nextRandomByte(): number {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const byte = pool[poolOffset]!;
  // Each byte is used once.
  pool[poolOffset++] = 0;
  return byte;
}

/** Uniform base62 string from the CSPRNG (rejection sampling avoids modulo bias). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const byte = nextRandomByte();
    if (byte < 248) out += BASE62[byte % 62];
  }
  return out;
}

/** Opaque, unguessable job id: 24 base62 characters ≈ 143 bits. */
export const newJobId = (): string => `job_${randomBase62(24)}`;

/** One-shot (`crypto.hash`): no Hash object per call, which a status poll makes twice. */
export const sha256Hex = (input: string | Buffer): string => hash('sha256', input, 'hex');

/**
 * The webhook message id of one event of one job. Deterministic, so a job processed
 * twice (at-least-once delivery) announces itself with the same `webhook-id`.
 */
export const webhookMessageId = (jobId: string, eventType: string): string =>
  `msg_${sha256Hex(`${jobId}:${eventType}`).slice(0, 32)}`;
