import { describe, expect, it } from 'vitest';
import { createLogger, scrubPresigned } from './logger.ts';
import { createS3Client, makeStorage } from './storage.ts';

const API_KEY = 'ck_live_9f8e7d6c5b4a39281706f5e4';
const WEBHOOK_SECRET = 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0';
const S3_SECRET = 'S3-SECRET-ACCESS-KEY-do-not-log';

/** A logger writing into memory, and the text it has written so far. */
function capture() {
  const lines: string[] = [];
  const log = createLogger({ level: 'trace', name: 'test' }, { write: (line: string) => void lines.push(line) });
  return {
    log,
    text: () => lines.join(''),
    entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** A real presigned GET URL (signing needs no server). */
async function presignedUrl(): Promise<string> {
  const client = createS3Client({
    endpoint: 'http://127.0.0.1:9000',
    bucket: 'cutout',
    region: 'us-east-1',
    accessKeyId: 'AKIDLOGTEST',
    secretAccessKey: S3_SECRET,
  });
  try {
    return await makeStorage({ client, bucket: 'cutout' }).presign('results/acme/job_abc.png', 3_600_000);
  } finally {
    client.destroy();
  }
}

const queryValue = (url: string, name: string) => new URL(url).searchParams.get(name)!;

describe('createLogger redaction', () => {
  it('never writes an x-api-key header', () => {
    const { log, text, entries } = capture();

    log.info({ headers: { 'x-api-key': API_KEY, 'content-type': 'image/png' } }, 'upload');
    log.info({ upstream: { headers: { 'x-api-key': API_KEY } } }, 'upstream call');
    log.info(
      { req: { method: 'POST', url: '/v1/jobs', ip: '127.0.0.1', headers: { 'x-api-key': API_KEY } } },
      'request',
    );

    expect(text()).not.toContain(API_KEY);
    expect(entries()[0]).toMatchObject({ headers: { 'x-api-key': '[REDACTED]', 'content-type': 'image/png' } });
    expect(entries()[2]).toMatchObject({ req: { method: 'POST', url: '/v1/jobs', ip: '127.0.0.1' } });
  });

  it('never writes API keys, webhook secrets or S3 credentials', () => {
    const { log, text } = capture();

    log.info({ apiKey: API_KEY, tenantId: 'acme' }, 'key used');
    log.info({ tenant: { apiKey: API_KEY, apiKeys: [API_KEY] } }, 'tenant');
    log.info({ secret: WEBHOOK_SECRET }, 'secret');
    log.info({ webhook_secret: WEBHOOK_SECRET, webhookSecret: WEBHOOK_SECRET }, 'webhook');
    log.info({ account: { webhook_secret: WEBHOOK_SECRET, secrets: [WEBHOOK_SECRET] } }, 'account');
    log.info({ s3: { secretAccessKey: S3_SECRET, bucket: 'cutout' }, bybybg: { apiKeys: [API_KEY] } }, 'config');
    log.child({ jobId: 'job_abc' }).warn({ apiKey: API_KEY }, 'child');

    expect(text()).not.toContain(API_KEY);
    expect(text()).not.toContain(WEBHOOK_SECRET);
    expect(text()).not.toContain(S3_SECRET);
    expect(text()).toContain('"tenantId":"acme"');
    expect(text()).toContain('"bucket":"cutout"');
    expect(text()).toContain('"jobId":"job_abc"');
  });

  it('censors secrets in a child logger’s fields and on a logged error', () => {
    const { log, text } = capture();

    log.child({ apiKey: API_KEY, upstream: { headers: { Authorization: `Bearer ${API_KEY}` } } }).info('child');
    const child = log.child({ jobId: 'job_abc' });
    child.setBindings({ secret: WEBHOOK_SECRET });
    child.info('rebound');
    log.error(
      { err: Object.assign(new Error('refused'), { apiKey: API_KEY, config: { s3: { secretAccessKey: S3_SECRET } } }) },
      'failed',
    );

    expect(text()).not.toContain(API_KEY);
    expect(text()).not.toContain(WEBHOOK_SECRET);
    expect(text()).not.toContain(S3_SECRET);
    expect(text()).toContain('"message":"refused"');
  });

  it('drops the signature of a presigned URL and keeps the rest of it', async () => {
    const url = await presignedUrl();
    const signature = queryValue(url, 'X-Amz-Signature');
    const credential = queryValue(url, 'X-Amz-Credential');
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    const { log, text, entries } = capture();

    log.info({ resultUrl: url }, 'result ready');
    log.info({ job: { result: { url } } }, 'nested');
    log.info({ req: { method: 'GET', url: `/proxy?target=1&X-Amz-Signature=${signature}` } }, 'request');

    const output = text();
    expect(output).not.toContain(signature);
    expect(output).not.toContain(credential);
    expect(output).not.toContain(encodeURIComponent(credential));
    expect(output).not.toContain('AKIDLOGTEST');
    const logged = entries()[0]!.resultUrl as string;
    expect(logged.startsWith('http://127.0.0.1:9000/cutout/results/acme/job_abc.png?')).toBe(true);
    expect(logged).toContain('X-Amz-Signature=[REDACTED]');
    expect(logged).toContain('X-Amz-Credential=[REDACTED]');
    expect(entries()[2]).toMatchObject({ req: { url: '/proxy?target=1&X-Amz-Signature=[REDACTED]' } });
  });

  it('leaves the caller’s objects untouched', async () => {
    const url = await presignedUrl();
    const fields = { apiKey: API_KEY, job: { resultUrl: url }, headers: { 'x-api-key': API_KEY } };
    const { log } = capture();

    log.info(fields, 'logged');

    expect(fields).toEqual({ apiKey: API_KEY, job: { resultUrl: url }, headers: { 'x-api-key': API_KEY } });
  });

  it('writes plain facts unchanged', () => {
    const { log, entries } = capture();

    log.info({ jobId: 'job_abc', status: 'succeeded', ms: 42, query: 'a=1&b=2' }, 'job succeeded');

    expect(entries()[0]).toMatchObject({
      name: 'test',
      msg: 'job succeeded',
      jobId: 'job_abc',
      status: 'succeeded',
      ms: 42,
      query: 'a=1&b=2',
    });
  });
});

describe('scrubPresigned', () => {
  it('redacts signing parameters wherever they are in the query', () => {
    expect(scrubPresigned('https://s3.example.com/b/k?X-Amz-Signature=abc&x=1&X-Amz-Security-Token=tok')).toBe(
      'https://s3.example.com/b/k?X-Amz-Signature=[REDACTED]&x=1&X-Amz-Security-Token=[REDACTED]',
    );
    expect(scrubPresigned('https://s3.example.com/b/k?AWSAccessKeyId=AKID&Signature=sig&Expires=1')).toBe(
      'https://s3.example.com/b/k?AWSAccessKeyId=[REDACTED]&Signature=[REDACTED]&Expires=1',
    );
  });
});
