import { describe, expect, it } from 'vitest';
import { UpstreamError } from './errors.ts';
import { interpretDownload, interpretSuccess } from './result.ts';
import { PNG } from './testing.ts';

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46]);
const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.from([36, 0, 0, 0]), Buffer.from('WEBPVP8 ')]);

function jsonBody(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function thrown(fn: () => unknown): UpstreamError {
  try {
    fn();
  } catch (error) {
    if (error instanceof UpstreamError) return error;
    throw error;
  }
  throw new Error('expected an UpstreamError');
}

describe('interpretSuccess', () => {
  it('takes an image body with its declared type', () => {
    expect(interpretSuccess(PNG, 'image/png; charset=binary')).toEqual({
      kind: 'bytes',
      body: PNG,
      contentType: 'image/png',
    });
  });

  it.each([
    [PNG, 'image/png'],
    [JPEG, 'image/jpeg'],
    [WEBP, 'image/webp'],
  ])('sniffs an untyped image body', (body, contentType) => {
    expect(interpretSuccess(body, 'application/octet-stream')).toMatchObject({ kind: 'bytes', contentType });
  });

  it.each(['result_b64', 'image_base64', 'base64', 'b64', 'image'])('finds base64 in `%s`', (field) => {
    expect(interpretSuccess(jsonBody({ [field]: PNG.toString('base64') }), 'application/json')).toMatchObject({
      kind: 'bytes',
      contentType: 'image/png',
    });
  });

  it.each(['result_url', 'url', 'image_url', 'output_url'])('finds a URL in `data.%s`', (field) => {
    const source = interpretSuccess(jsonBody({ data: { [field]: 'https://cdn.example/r/1.png' } }), 'application/json');
    expect(source).toEqual({ kind: 'url', url: new URL('https://cdn.example/r/1.png') });
  });

  it('reads JSON sent without a JSON content type', () => {
    expect(interpretSuccess(jsonBody({ image: PNG.toString('base64') }), undefined)).toMatchObject({ kind: 'bytes' });
  });

  it.each(['file:///etc/passwd', 'ftp://cdn.example/1.png', 'javascript:alert(1)'])('never fetches %s', (url) => {
    expect(thrown(() => interpretSuccess(jsonBody({ url }), 'application/json')).code).toBe('upstream_bad_response');
  });

  it('does not mistake a status word for base64', () => {
    expect(thrown(() => interpretSuccess(jsonBody({ image: 'processing' }), 'application/json')).code).toBe(
      'upstream_bad_response',
    );
  });

  it('quotes at most 64 bytes of an unreadable body, escaped', () => {
    const body = Buffer.concat([Buffer.from([0, 1, 0xfe]), Buffer.from('x'.repeat(100))]);
    const error = thrown(() => interpretSuccess(body, 'text/plain'));
    expect(error.message).toContain(`"\\x00\\x01\\xfe${'x'.repeat(61)}…"`);
    expect(error).toMatchObject({ kind: 'permanent', retryable: false });
  });

  it('rejects an empty image body', () => {
    expect(thrown(() => interpretSuccess(Buffer.alloc(0), 'image/png')).code).toBe('upstream_bad_response');
  });
});

describe('interpretDownload', () => {
  it('accepts an image by content type or by magic bytes', () => {
    expect(interpretDownload(JPEG, 'image/jpeg')).toMatchObject({ contentType: 'image/jpeg' });
    expect(interpretDownload(PNG, 'binary/octet-stream')).toMatchObject({ contentType: 'image/png' });
  });

  it('rejects anything else', () => {
    expect(thrown(() => interpretDownload(Buffer.from('<Error>AccessDenied</Error>'), 'application/xml')).code).toBe(
      'upstream_bad_response',
    );
  });
});
