import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { makeBoundary, multipartBody, multipartLength, type MultipartParts } from './multipart.ts';

async function collect(parts: MultipartParts): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of multipartBody(parts)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function parts(fields: Record<string, string>, file: Buffer, filename = 'photo.png'): MultipartParts {
  return {
    boundary: makeBoundary(),
    fields,
    file: { field: 'file', filename, contentType: 'image/png', stream: Readable.from([file]) },
  };
}

/** The platform's multipart parser, so the test does not grade our output with our own reader. */
async function parse(body: Buffer, boundary: string): Promise<FormData> {
  return new Response(body, { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }).formData();
}

describe('multipartBody', () => {
  it('carries the file bytes and text fields intact', async () => {
    const file = Buffer.from([0, 1, 2, 13, 10, 45, 45, 255]);
    const input = parts({ size: 'full', format: 'png' }, file);

    const form = await parse(await collect(input), input.boundary);

    const sent = form.get('file') as File;
    expect(Buffer.from(await sent.arrayBuffer()).equals(file)).toBe(true);
    expect(sent.name).toBe('photo.png');
    expect(sent.type).toBe('image/png');
    expect(form.get('size')).toBe('full');
    expect(form.get('format')).toBe('png');
  });

  it('escapes quotes and line breaks in names so they cannot break the part headers', async () => {
    const input = parts({ 'we"ird\r\nname': 'v' }, Buffer.from('x'), 'a"b\nc.png');
    const body = await collect(input);

    expect(body.toString('latin1')).toContain('name="we%22ird%0D%0Aname"');
    expect(body.toString('latin1')).toContain('filename="a%22b%0Ac.png"');
    const form = await parse(body, input.boundary);
    expect((form.get('file') as File).name).toBe('a"b\nc.png');
  });

  it('sends line breaks in values as CRLF', async () => {
    const input = parts({ note: 'one\ntwo\rthree\r\nfour' }, Buffer.from('x'));

    const form = await parse(await collect(input), input.boundary);

    expect(form.get('note')).toBe('one\r\ntwo\r\nthree\r\nfour');
  });

  it('predicts the exact body length for a known file size', async () => {
    const file = Buffer.alloc(1234, 7);
    const input = parts({ size: 'full', naïve: 'café' }, file);

    expect((await collect(input)).length).toBe(multipartLength(input, file.length));
  });
});
