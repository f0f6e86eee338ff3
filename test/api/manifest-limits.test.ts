import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormData } from 'undici';
import type { Json } from '../helpers/jobs.ts';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { postBatch } from '../helpers/batches.ts';
import { eventually } from '../helpers/webhooks.ts';

const MAX_ITEMS = 100;
const MAX_MANIFEST_BYTES = 200_000;
const MAX_UPLOAD_BYTES = 60_000;

const row = (i: number, extra = '') => `https://images.example.com/p/${i}.jpg,sku-${i}${extra}\r\n`;

function manifestForm(csv: string): FormData {
  const form = new FormData();
  form.append('manifest', new Blob([csv], { type: 'text/csv' }), 'manifest.csv');
  return form;
}

/**
 * A POST /v1/batches sent by hand on a socket, chunk by chunk, that never sends its last
 * chunk: whatever answer arrives was given without the server reading the whole body.
 */
function openUpload(
  apiUrl: string,
  apiKey: string,
): { socket: Socket; send(text: string): void; answer: Promise<{ status: number; body: Json }>; received(): string } {
  const { hostname, port } = new URL(apiUrl);
  const socket = connect(Number(port), hostname);
  const boundary = 'manifestlimits';
  socket.write(
    [
      'POST /v1/batches HTTP/1.1',
      `Host: ${hostname}:${port}`,
      `X-API-KEY: ${apiKey}`,
      `Content-Type: multipart/form-data; boundary=${boundary}`,
      'Transfer-Encoding: chunked',
      '',
      '',
    ].join('\r\n'),
  );
  const send = (text: string) => {
    const bytes = Buffer.from(text);
    socket.write(`${bytes.length.toString(16)}\r\n`);
    socket.write(bytes);
    socket.write('\r\n');
  };
  send(
    `--${boundary}\r\nContent-Disposition: form-data; name="manifest"; filename="m.csv"\r\nContent-Type: text/csv\r\n\r\n`,
  );
  let received = '';
  const answer = new Promise<{ status: number; body: Json }>((resolve, reject) => {
    let answered = false;
    socket.on('data', (data: Buffer) => {
      received += data.toString('latin1');
      if (answered) return;
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(received.slice(0, end))?.[1]);
      const body = received.slice(end + 4);
      if (Buffer.byteLength(body, 'latin1') < length) return;
      answered = true;
      resolve({ status: Number(received.split(' ')[1]), body: JSON.parse(body.slice(0, length)) as Json });
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed before an answer: ${received.slice(0, 200)}`)));
  });
  return { socket, send, answer, received: () => received };
}

describe('CSV manifest limits', () => {
  let system: TestSystem;

  beforeAll(async () => {
    system = await startSystem({
      workers: 0,
      env: {
        MAX_BATCH_ITEMS: String(MAX_ITEMS),
        MAX_MANIFEST_BYTES: String(MAX_MANIFEST_BYTES),
        MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
      },
    });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('answers 413 too_many_items at the first row past MAX_BATCH_ITEMS, while the rest of the manifest is still unsent', async () => {
    const upload = openUpload(system.apiUrl, system.apiKey);
    try {
      upload.send('image_url,client_ref\r\n');
      for (let i = 0; i <= MAX_ITEMS + 5; i++) upload.send(row(i));
      // The rest of a very long manifest (and the end of the body) is never sent: an answer
      // now cannot have waited for it.
      const { status, body } = await upload.answer;
      expect([status, body.error.code]).toEqual([413, 'too_many_items']);
      // The rest is let through unread; once the body ends, the connection serves the next request.
      for (let i = 0; i < 50_000; i++) upload.send(row(i));
      upload.send('\r\n--manifestlimits--\r\n');
      upload.socket.write('0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await eventually(async () => (upload.received().includes('HTTP/1.1 200') ? true : undefined), {
        describe: 'an answer to the next request on the connection',
      });
    } finally {
      upload.socket.destroy();
    }
    expect(await system.services.queues.removeBg.count()).toBe(0);
  });

  it('answers 413 file_too_large for a manifest over MAX_MANIFEST_BYTES, blank lines included', async () => {
    const blank = await postBatch(system, manifestForm(`image_url\r\n${'\r\n'.repeat(MAX_MANIFEST_BYTES / 2)}`));
    expect([blank.status, blank.body.error.code]).toEqual([413, 'file_too_large']);
    expect(blank.body.error.message).toContain(String(MAX_MANIFEST_BYTES));
  });

  it('counts rows of empty fields as rows, so they cannot pile up either', async () => {
    const empty = await postBatch(system, manifestForm(`image_url,client_ref\r\n${',\r\n'.repeat(MAX_ITEMS + 1)}`));
    expect([empty.status, empty.body.error.code]).toEqual([413, 'too_many_items']);
  });

  it('takes a manifest larger than MAX_UPLOAD_BYTES but within MAX_MANIFEST_BYTES', async () => {
    const note = `,${'n'.repeat(1_000)}`;
    const csv = `image_url,client_ref,note\r\n${Array.from({ length: MAX_ITEMS }, (_, i) => row(i, note)).join('')}`;
    expect(csv.length).toBeGreaterThan(MAX_UPLOAD_BYTES);
    const created = await postBatch(system, manifestForm(csv));
    expect(created.status).toBe(202);
    expect(created.body.counts.total).toBe(MAX_ITEMS);
  });

  it('reads quotes, line breaks inside quotes, CRLF and LF, a BOM and blank lines, numbering rows from the header', async () => {
    const csv =
      '\ufeffimage_url,client_ref,note\r\n\r\n"https://images.example.com/q/1.jpg","Q,1","two\r\nlines"\nnot a url,Q-2,\r\n\n"https://images.example.com/q/3.jpg",Q-3,"say ""hi"""';
    const created = await postBatch(system, manifestForm(csv));
    expect(created.status).toBe(202);
    expect(created.body.counts.total).toBe(2);
    expect(created.body.rejected).toEqual([{ row: 3, reason: expect.stringMatching(/^invalid_image_url/) }]);
    const jobs = await system.services.batches.itemIds(created.body.id, 0, 10);
    const records = await Promise.all(jobs.map((id) => system.services.jobs.get(id)));
    expect(records.map((record) => [record!.clientRef, record!.metadata])).toEqual([
      ['Q,1', { note: 'two\r\nlines' }],
      ['Q-3', { note: 'say "hi"' }],
    ]);
  });

  it('refuses a bad manifest with 422 invalid_manifest, naming the row', async () => {
    const unclosed = await postBatch(
      system,
      manifestForm(`image_url\r\n${row(1)}"https://images.example.com/x.jpg\r\n`),
    );
    expect([unclosed.status, unclosed.body.error.code, unclosed.body.error.message]).toEqual([
      422,
      'invalid_manifest',
      'The manifest is not valid CSV: a quoted field is not closed (row 3)',
    ]);
    const longRow = await postBatch(system, manifestForm(`image_url,note\r\n${row(1)}x,${'y'.repeat(70_000)}\r\n`));
    expect([longRow.status, longRow.body.error.code]).toEqual([422, 'invalid_manifest']);
    expect(longRow.body.error.message).toMatch(/a row is longer than 65536 bytes \(row 3\)$/);
    const noHeader = await postBatch(system, manifestForm('url,sku\r\nx,y\r\n'));
    expect([noHeader.status, noHeader.body.error.message]).toEqual([
      422,
      'the manifest header has no image_url column',
    ]);
    const empty = await postBatch(system, manifestForm('\r\n\r\n'));
    expect([empty.status, empty.body.error.message]).toEqual([422, 'the manifest is empty']);
  });

  it('refuses an image file of a batch over MAX_UPLOAD_BYTES, or any file over MAX_MANIFEST_BYTES, as a rejected row, and reads the files after it', async () => {
    const form = new FormData();
    const photo = async (variant: number, extra = 0) =>
      new Blob([Buffer.concat([await productImage('png', PRODUCT_SHOT, 1_600 + variant), Buffer.alloc(extra, 1)])], {
        type: 'image/png',
      });
    form.append('file', await photo(0), 'ok.png');
    form.append('file', await photo(1, MAX_UPLOAD_BYTES), 'big.png');
    form.append('file', new Blob([Buffer.alloc(MAX_MANIFEST_BYTES * 2, 7)], { type: 'image/png' }), 'huge.png');
    form.append('file', await photo(2), 'ok-too.png');
    const created = await postBatch(system, form);
    expect(created.status).toBe(202);
    expect(created.body.counts.total).toBe(2);
    expect(created.body.rejected).toEqual([
      { row: 2, reason: expect.stringMatching(/^file_too_large/) },
      { row: 3, reason: expect.stringMatching(/^unsupported_media_type/) },
    ]);
  });
});
