import { describe, expect, it } from 'vitest';
import { MAX_JSON_ITEM_BYTES, readJsonBody } from './json-body.ts';

const rules = { array: 'items', fields: new Set(['webhook_url', 'options']), maxBytes: 1_000_000 };

/** `text` as a stream of `size`-byte chunks, as a socket delivers a body. */
async function* chunks(text: string, size = 7): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function read(
  text: string,
  options: Partial<typeof rules> & { checkField?: (name: string, value: unknown) => void } = {},
) {
  const items: [number, unknown][] = [];
  const body = await readJsonBody(
    chunks(text),
    { ...rules, ...options },
    async (value, index) => void items.push([index, value]),
  );
  return { ...body, items };
}

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'no error',
    (error: { code?: string; message: string }) => `${error.code}: ${error.message}`,
  );

describe('readJsonBody', () => {
  it('hands over each element of the array in order, and keeps the fields wherever they stand', async () => {
    const { items, fields, hasArray } = await read(
      '{"webhook_url":"https://a.example/h","items":[{"image_url":"x","metadata":{"a":[1,2]}}, "two" ,3,null],"options":{"size":"hd"}}',
    );
    expect(items).toEqual([
      [0, { image_url: 'x', metadata: { a: [1, 2] } }],
      [1, 'two'],
      [2, 3],
      [3, null],
    ]);
    expect(fields).toEqual({ webhook_url: 'https://a.example/h', options: { size: 'hd' } });
    expect(hasArray).toBe(true);
  });

  it('says when the array is missing, and takes an empty one', async () => {
    expect((await read('{"webhook_url":"x"}')).hasArray).toBe(false);
    expect(await read('{"items":[]}')).toMatchObject({ hasArray: true, items: [] });
  });

  it('refuses what is not an object with the array, unknown and repeated fields', async () => {
    expect(await codeOf(read('[1,2]'))).toMatch(/^invalid_request: The JSON body must be an object/);
    expect(await codeOf(read('{"items":{"a":1}}'))).toBe('invalid_request: "items" must be an array');
    expect(await codeOf(read('{"items":[],"colour":"red"}'))).toBe('unknown_field: Unknown field "colour"');
    expect(await codeOf(read('{"items":[],"items":[]}'))).toBe('duplicate_field: Field "items" was sent twice');
    // A key inside an item or a field's value is not a top-level field.
    expect((await read('{"options":{"colour":"red"},"items":[{"colour":"blue"}]}')).items).toHaveLength(1);
  });

  it('refuses a body that is not JSON, ends early or goes on after the object', async () => {
    expect(await codeOf(read('{"items":[1,'))).toMatch(/^invalid_request: The body is not valid JSON/);
    expect(await codeOf(read('{"items":[1]} {"items":[]}'))).toMatch(/^invalid_request: The body is not valid JSON/);
    expect(await codeOf(read('{"items":[tru]}'))).toMatch(/^invalid_request: The body is not valid JSON/);
    expect(await codeOf(read(''))).toMatch(/^invalid_request: The body is empty/);
  });

  it('bounds the body and each element of the array', async () => {
    expect(await codeOf(read(`{"items":["${'x'.repeat(200)}"]}`, { maxBytes: 100 }))).toMatch(
      /^payload_too_large: The JSON body is larger than the limit of 100 bytes/,
    );
    const long = `{"items":[{"a":"b"},{"metadata":{"note":"${'n'.repeat(MAX_JSON_ITEM_BYTES)}"},"image_url":"x"}]}`;
    expect(await codeOf(read(long))).toMatch(/^payload_too_large: An element of "items" is longer than/);
  });

  it('stops before the elements after a field that is refused', async () => {
    const items: unknown[] = [];
    const refuse = (name: string) => {
      if (name === 'webhook_url') throw Object.assign(new Error('bad url'), { code: 'invalid_webhook_url' });
    };
    const body = `{"webhook_url":"ftp://x","items":[${Array.from({ length: 2_000 }, (_, i) => i).join(',')}]}`;
    const reading = readJsonBody(
      chunks(body, 16),
      { ...rules, checkField: refuse },
      async (value) => void items.push(value),
    );
    expect(await codeOf(reading)).toBe('invalid_webhook_url: bad url');
    expect(items).toEqual([]);
  });
});
