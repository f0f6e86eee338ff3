import { deflateSync } from 'node:zlib';

const PADDING_CHUNK = 1024 * 1024;
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(data.length, 0);
  header.write(type, 4, 'ascii');
  // The API checks magic bytes, header dimensions and the IEND trailer, not chunk CRCs.
  return Buffer.concat([header, data, Buffer.alloc(4)]);
}

const PADDING = chunk('paDd', Buffer.alloc(PADDING_CHUNK, 0x5a));
const IEND = Buffer.from('0000000049454e44ae426082', 'hex');

/**
 * A PNG of about `bytes` bytes as a stream of buffers, without holding it in memory:
 * signature, a 4000×4000 IHDR (16 M pixels, under MAX_IMAGE_PIXELS), one tiny IDAT, then
 * 1 MiB private ancillary chunks ("paDd", which decoders skip) and the IEND trailer.
 */
export function bigPng(bytes: number, variant = 0): { length: number; chunks: () => Generator<Buffer> } {
  const ihdr = Buffer.alloc(13);
  // The width varies with `variant`, so files differ and duplicate detection stays out of the way.
  ihdr.writeUInt32BE(4000 + (variant % 1000), 0);
  ihdr.writeUInt32BE(4000, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const head = Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(16)))]);
  const paddings = Math.max(0, Math.round((bytes - head.length - IEND.length) / PADDING.length));
  return {
    length: head.length + paddings * PADDING.length + IEND.length,
    *chunks() {
      yield head;
      for (let index = 0; index < paddings; index++) yield PADDING;
      yield IEND;
    },
  };
}

/** A multipart/form-data body with `file` streamed from `chunks`; its exact length for Content-Length. */
export function multipartFile(
  file: { length: number; chunks: () => Generator<Buffer> },
  fields: Record<string, string> = {},
): { contentType: string; length: number; body: () => AsyncGenerator<Buffer> } {
  const boundary = `----cutoutbench${Math.random().toString(16).slice(2)}`;
  const fieldParts = Object.entries(fields)
    .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
    .join('');
  const before = Buffer.from(
    `${fieldParts}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n`,
  );
  const after = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length: before.length + file.length + after.length,
    async *body() {
      yield before;
      yield* file.chunks();
      yield after;
    },
  };
}
