import { deflateSync } from 'node:zlib';
import { FormData } from 'undici';
import { productImage, PRODUCT_SHOT } from './images.ts';

/**
 * The API's table of bad requests to POST /v1/jobs, each with the status and error code it
 * must get, and of odd but good ones (status 202, code ''), which must not be refused.
 * Shared by the API test (test/api/bad-input.test.ts) and the hostile-input fault test,
 * which fires it at a running API process under load.
 */

/** The API must run with this MAX_UPLOAD_BYTES for the "file over MAX_UPLOAD_BYTES" row. */
export const MAX_UPLOAD_BYTES = 60_000;

export type Part = { name: string; value: string } | { name: string; file: Buffer; filename?: string; type?: string };
export interface Row {
  name: string;
  parts?: Part[];
  body?: string;
  contentType?: string;
  headers?: Record<string, string>;
  key?: string | null;
  status: number;
  code: string;
}

/** A PNG whose header claims `width`×`height`: a pixel bomb no decoder should open. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    return Buffer.concat([length, Buffer.from(type), data, Buffer.alloc(4)]);
  };
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** What a phone's camera may append after a JPEG's EOI: a motion photo's video (MP4 boxes). */
const MP4_LIKE = Buffer.concat([
  Buffer.from('0000001866747970', 'hex'),
  Buffer.from('mp42isom'),
  Buffer.alloc(8),
  Buffer.from('000010106d646174', 'hex'),
  Buffer.from('ffd8ffd9', 'hex'),
  Buffer.alloc(4096, 0xa5),
]);

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

export async function buildRows(): Promise<Row[]> {
  const png = await productImage('png', PRODUCT_SHOT, 900);
  const jpeg = await productImage('jpeg', PRODUCT_SHOT, 901);
  const file = (data: Buffer, filename = 'photo.png', type = 'image/png'): Part => ({
    name: 'file',
    file: data,
    filename,
    type,
  });
  const withPng = (...extra: Part[]): Part[] => [file(png), ...extra];
  const field = (name: string, value: string): Part => ({ name, value });
  return [
    { name: 'no API key', parts: withPng(), key: null, status: 401, code: 'missing_api_key' },
    { name: 'empty API key', parts: withPng(), key: '', status: 401, code: 'missing_api_key' },
    {
      name: 'unknown API key',
      parts: withPng(),
      key: 'ck_test_unknown_000000000000000000',
      status: 401,
      code: 'invalid_api_key',
    },
    {
      name: 'API key with a newline-like suffix',
      parts: withPng(),
      key: 'ck_test_unknown_000000000000000000 x',
      status: 401,
      code: 'invalid_api_key',
    },
    { name: 'two files', parts: [file(png), file(jpeg, 'b.jpg', 'image/jpeg')], status: 400, code: 'too_many_files' },
    { name: 'no file part', parts: [field('metadata', '{"sku":"A"}')], status: 400, code: 'missing_file' },
    { name: 'an empty form', parts: [], status: 400, code: 'missing_file' },
    { name: 'a zero-byte file', parts: [file(Buffer.alloc(0))], status: 400, code: 'empty_file' },
    {
      name: 'text renamed .png',
      parts: [file(Buffer.from('just some text, honestly'), 'photo.png')],
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'SVG with a script',
      parts: [
        file(
          Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
          'a.svg',
          'image/svg+xml',
        ),
      ],
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'GIF/HTML polyglot',
      parts: [file(Buffer.concat([GIF, Buffer.from('<html><script>alert(1)</script></html>')]), 'x.gif', 'image/gif')],
      status: 415,
      code: 'unsupported_media_type',
    },
    { name: 'a plain GIF', parts: [file(GIF, 'x.gif', 'image/gif')], status: 415, code: 'unsupported_media_type' },
    {
      name: 'an HTML page sent as image/jpeg',
      parts: [file(Buffer.from('<!doctype html><html><body>hi</body></html>'), 'a.jpg', 'image/jpeg')],
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a PDF',
      parts: [file(Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF'), 'a.pdf', 'application/pdf')],
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a ZIP sent as image/png',
      parts: [file(Buffer.from('504b0304140000000000', 'hex'), 'a.png')],
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a 50 000 × 50 000 PNG header',
      parts: [file(pngHeader(50_000, 50_000), 'bomb.png')],
      status: 422,
      code: 'image_too_large',
    },
    {
      name: 'a PNG with bytes after IEND',
      parts: [file(Buffer.concat([await productImage('png', PRODUCT_SHOT, 902), Buffer.alloc(2048, 0x5a)]))],
      status: 202,
      code: '',
    },
    {
      name: 'a JPEG with a 4 KB trailer after EOI',
      parts: [
        file(
          Buffer.concat([await productImage('jpeg', PRODUCT_SHOT, 903), Buffer.alloc(4096, 0x5a)]),
          'a.jpg',
          'image/jpeg',
        ),
      ],
      status: 202,
      code: '',
    },
    {
      name: 'a JPEG followed by a video (motion photo)',
      parts: [file(Buffer.concat([await productImage('jpeg', PRODUCT_SHOT, 904), MP4_LIKE]), 'a.jpg', 'image/jpeg')],
      status: 202,
      code: '',
    },
    {
      name: 'a PNG cut inside its IEND chunk',
      parts: [file(png.subarray(0, png.length - 2))],
      status: 422,
      code: 'image_truncated',
    },
    {
      name: 'a truncated PNG',
      parts: [file(png.subarray(0, Math.floor(png.length * 0.6)))],
      status: 422,
      code: 'image_truncated',
    },
    {
      name: 'a truncated JPEG',
      parts: [file(jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), 'a.jpg', 'image/jpeg')],
      status: 422,
      code: 'image_truncated',
    },
    { name: 'a PNG signature alone', parts: [file(png.subarray(0, 8))], status: 415, code: 'unsupported_media_type' },
    {
      name: 'a PNG whose header is cut inside IHDR',
      parts: [file(png.subarray(0, 20))],
      status: 422,
      code: 'invalid_image',
    },
    {
      name: 'a JPEG with no frame header',
      parts: [
        file(
          Buffer.concat([
            Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex'),
            Buffer.alloc(300),
            Buffer.from('ffd9', 'hex'),
          ]),
          'a.jpg',
          'image/jpeg',
        ),
      ],
      status: 422,
      code: 'invalid_image',
    },
    {
      name: 'a file over MAX_UPLOAD_BYTES',
      parts: [file(Buffer.concat([png, Buffer.alloc(MAX_UPLOAD_BYTES * 2, 1)]))],
      status: 413,
      code: 'file_too_large',
    },
    {
      name: 'metadata over 4 KB',
      parts: withPng(field('metadata', JSON.stringify({ note: 'x'.repeat(5000) }))),
      status: 422,
      code: 'invalid_metadata',
    },
    {
      name: 'metadata that is not JSON',
      parts: withPng(field('metadata', '{sku: A}')),
      status: 422,
      code: 'invalid_metadata',
    },
    {
      name: 'metadata that is an array',
      parts: withPng(field('metadata', '["a"]')),
      status: 422,
      code: 'invalid_metadata',
    },
    { name: 'metadata that is null', parts: withPng(field('metadata', 'null')), status: 422, code: 'invalid_metadata' },
    {
      name: 'options that are not JSON',
      parts: withPng(field('options', 'size=full')),
      status: 422,
      code: 'invalid_options',
    },
    {
      name: 'options with a nested object',
      parts: withPng(field('options', '{"size":{"w":1}}')),
      status: 422,
      code: 'invalid_options',
    },
    {
      name: 'options naming the file field',
      parts: withPng(field('options', '{"file":"x"}')),
      status: 422,
      code: 'invalid_options',
    },
    {
      name: 'options with a CRLF in a name',
      parts: withPng(field('options', '{"a\\r\\nb":"x"}')),
      status: 422,
      code: 'invalid_options',
    },
    {
      name: 'renditions that are not JSON',
      parts: withPng(field('renditions', 'marketplace')),
      status: 422,
      code: 'invalid_renditions',
    },
    {
      name: 'renditions with an unknown format',
      parts: withPng(field('renditions', '[{"name":"a","format":"gif"}]')),
      status: 422,
      code: 'invalid_renditions',
    },
    {
      name: 'renditions with two specs of one name',
      parts: withPng(field('renditions', '[{"name":"a"},{"name":"a"}]')),
      status: 422,
      code: 'invalid_renditions',
    },
    {
      name: 'renditions before the file, with a transparent JPEG',
      parts: [field('renditions', '[{"name":"a","format":"jpeg","background":"transparent"}]'), file(png)],
      status: 422,
      code: 'invalid_renditions',
    },
    { name: 'an unknown field', parts: withPng(field('colour', 'red')), status: 400, code: 'unknown_field' },
    {
      name: 'a field sent twice',
      parts: withPng(field('metadata', '{}'), field('metadata', '{}')),
      status: 400,
      code: 'duplicate_field',
    },
    {
      name: 'the image in another field',
      parts: [{ name: 'image', file: png, filename: 'a.png', type: 'image/png' }],
      status: 400,
      code: 'unknown_field',
    },
    {
      name: 'a 200-character field name',
      parts: withPng(field('m'.repeat(200), 'x')),
      status: 400,
      code: 'unknown_field',
    },
    {
      name: 'many unknown fields',
      parts: withPng(...Array.from({ length: 12 }, (_, i) => field(`f${i}`, 'x'))),
      status: 400,
      code: 'unknown_field',
    },
    {
      name: 'an ftp webhook_url',
      parts: withPng(field('webhook_url', 'ftp://example.com/hook')),
      status: 422,
      code: 'invalid_webhook_url',
    },
    {
      name: 'a webhook_url that is not a URL',
      parts: withPng(field('webhook_url', 'not a url')),
      status: 422,
      code: 'invalid_webhook_url',
    },
    {
      name: 'a webhook_url with credentials',
      parts: withPng(field('webhook_url', 'https://user:pass@example.com/hook')),
      status: 422,
      code: 'invalid_webhook_url',
    },
    {
      name: 'a 3000-character webhook_url',
      parts: withPng(field('webhook_url', `https://example.com/${'a'.repeat(3000)}`)),
      status: 422,
      code: 'invalid_webhook_url',
    },
    {
      name: 'a webhook_url to a private address',
      parts: withPng(field('webhook_url', 'http://10.0.0.1/hook')),
      status: 422,
      code: 'invalid_webhook_url',
    },
    {
      name: 'a webhook_url to cloud metadata',
      parts: withPng(field('webhook_url', 'http://169.254.169.254/latest/meta-data')),
      status: 422,
      code: 'invalid_webhook_url',
    },
    {
      name: 'an Idempotency-Key of 300 characters',
      parts: withPng(),
      headers: { 'idempotency-key': 'k'.repeat(300) },
      status: 400,
      code: 'invalid_idempotency_key',
    },
    {
      name: 'an Idempotency-Key with spaces',
      parts: withPng(),
      headers: { 'idempotency-key': 'two words' },
      status: 400,
      code: 'invalid_idempotency_key',
    },
    {
      name: 'a text/plain body',
      body: 'hello',
      contentType: 'text/plain',
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a JSON body without image_url',
      body: '{}',
      contentType: 'application/json',
      status: 400,
      code: 'missing_file',
    },
    {
      name: 'a JSON body that is not JSON',
      body: '{"image_url":',
      contentType: 'application/json',
      status: 400,
      code: 'invalid_request',
    },
    {
      name: 'multipart with a broken boundary',
      body: '--nope\r\ncontent-disposition: form-data; name="file"\r\n\r\nxx\r\n--nope--',
      contentType: 'multipart/form-data; boundary=other',
      status: 400,
      code: 'invalid_multipart',
    },
    {
      name: 'multipart cut off inside the file',
      body: '--b\r\ncontent-disposition: form-data; name="file"; filename="a.png"\r\ncontent-type: image/png\r\n\r\n\x89PNG\r\n',
      contentType: 'multipart/form-data; boundary=b',
      status: 400,
      code: 'invalid_multipart',
    },
  ];
}

export function formOf(parts: Part[]): FormData {
  const form = new FormData();
  for (const part of parts) {
    if ('file' in part)
      form.append(
        part.name,
        new Blob([part.file], { type: part.type ?? 'application/octet-stream' }),
        part.filename ?? 'blob',
      );
    else form.append(part.name, part.value);
  }
  return form;
}
