import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { jpegEndFinder, pngEndFinder, webpEndFinder, type EndFinder, type EndState } from './image-end.ts';

/** The state after feeding `bytes` in slices of `slice` bytes (1: byte by byte). */
function walk(finder: () => EndFinder, bytes: Buffer, slice = bytes.length || 1): EndState {
  const end = finder();
  for (let at = 0; at < bytes.length; at += slice) end.push(bytes.subarray(at, at + slice));
  return end.state();
}

/** A noisy photo, so the entropy-coded data is long and full of stuffed 0xFF bytes. */
const photo = () => sharp(randomBytes(96 * 64 * 3), { raw: { width: 96, height: 64, channels: 3 } });

/** An MP4-like blob as motion photos append: boxes whose payload holds JPEG and PNG markers. */
const mp4Blob = () =>
  Buffer.concat([
    Buffer.from('0000001866747970', 'hex'),
    Buffer.from('mp42isom'),
    Buffer.alloc(8),
    Buffer.from('0000100c6d646174', 'hex'),
    Buffer.from('ffd8ffd9ffd90000000049454e44ae426082', 'hex'),
    randomBytes(4096),
  ]);

describe('pngEndFinder', () => {
  let png: Buffer;
  beforeAll(async () => {
    png = await photo().png().toBuffer();
  });

  it('finds the IEND chunk fed whole, in odd slices or byte by byte', () => {
    expect(walk(pngEndFinder, png)).toBe('ended');
    expect(walk(pngEndFinder, png, 7)).toBe('ended');
    expect(walk(pngEndFinder, png, 1)).toBe('ended');
  });

  it('accepts bytes after IEND', () => {
    expect(walk(pngEndFinder, Buffer.concat([png, randomBytes(5000)]), 1000)).toBe('ended');
    expect(walk(pngEndFinder, Buffer.concat([png, mp4Blob()]))).toBe('ended');
  });

  it('stays open for a file cut anywhere before the end of IEND, even after the IEND bytes of another chunk', () => {
    for (let cut = 8; cut < png.length; cut += 97) expect(walk(pngEndFinder, png.subarray(0, cut))).toBe('open');
    expect(walk(pngEndFinder, png.subarray(0, png.length - 1))).toBe('open');
    // A file cut inside a text chunk whose data looks like an IEND chunk has not ended.
    const fakeTrailer = Buffer.concat([
      Buffer.from('0000000c74455874', 'hex'),
      Buffer.from('0000000049454e44ae426082', 'hex'),
    ]);
    expect(walk(pngEndFinder, Buffer.concat([png.subarray(0, 33), fakeTrailer]))).toBe('open');
  });

  it('calls a file damaged when the signature or a chunk type is wrong', () => {
    expect(walk(pngEndFinder, Buffer.concat([Buffer.from('89504e470d0a1a0b', 'hex'), png.subarray(8)]))).toBe(
      'damaged',
    );
    const garbled = Buffer.from(png);
    garbled[37] = 0x00; // the second byte of IHDR's type
    expect(walk(pngEndFinder, garbled)).toBe('damaged');
  });
});

describe('jpegEndFinder', () => {
  let baseline: Buffer;
  let progressive: Buffer;
  beforeAll(async () => {
    baseline = await photo().jpeg({ quality: 90 }).toBuffer();
    progressive = await photo().jpeg({ quality: 90, progressive: true }).toBuffer();
  });

  it('finds the EOI of baseline and progressive files, fed whole, in odd slices or byte by byte', () => {
    for (const jpeg of [baseline, progressive]) {
      expect(walk(jpegEndFinder, jpeg)).toBe('ended');
      expect(walk(jpegEndFinder, jpeg, 13)).toBe('ended');
      expect(walk(jpegEndFinder, jpeg, 1)).toBe('ended');
    }
  });

  it('accepts a long trailer and an appended video after EOI', () => {
    expect(walk(jpegEndFinder, Buffer.concat([baseline, randomBytes(64 * 1024)]), 4096)).toBe('ended');
    expect(walk(jpegEndFinder, Buffer.concat([progressive, mp4Blob()]))).toBe('ended');
  });

  it('stays open for a file cut inside a segment or a scan', () => {
    for (const jpeg of [baseline, progressive]) {
      for (let cut = 2; cut < jpeg.length - 1; cut += 101)
        expect(walk(jpegEndFinder, jpeg.subarray(0, cut))).toBe('open');
      expect(walk(jpegEndFinder, jpeg.subarray(0, jpeg.length - 1))).toBe('open');
    }
  });

  it('skips a thumbnail inside an APP1 segment, its own EOI included', () => {
    const thumbnail = Buffer.from('ffd8ffdb0004ffda0002aabbffd9', 'hex');
    const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, 0, thumbnail.length + 2]), thumbnail]);
    const withThumbnail = Buffer.concat([baseline.subarray(0, 2), app1, baseline.subarray(2)]);
    expect(walk(jpegEndFinder, withThumbnail)).toBe('ended');
    expect(walk(jpegEndFinder, withThumbnail.subarray(0, 2 + app1.length + 40))).toBe('open');
  });

  it('reads stuffed bytes, restart markers and fill bytes in a scan as scan data', () => {
    const head = Buffer.from('ffd8ffdd00040010ffda0008010100003f00', 'hex');
    const scan = Buffer.from('12ff0034ffd0ff00ffd7ffff0056', 'hex');
    expect(walk(jpegEndFinder, Buffer.concat([head, scan, Buffer.from('ffd9', 'hex')]), 1)).toBe('ended');
    expect(walk(jpegEndFinder, Buffer.concat([head, scan]))).toBe('open');
  });

  it('calls a file damaged when it does not start with SOI, ends before any scan or starts twice', () => {
    expect(walk(jpegEndFinder, Buffer.concat([Buffer.from('ffd9', 'hex'), baseline.subarray(2)]))).toBe('damaged');
    expect(walk(jpegEndFinder, Buffer.from('ffd8ffe000104a46494600010100000100010000ffd9', 'hex'))).toBe('damaged');
    expect(walk(jpegEndFinder, Buffer.concat([baseline.subarray(0, 2), baseline]))).toBe('damaged');
  });
});

describe('webpEndFinder', () => {
  it('ends once the RIFF length is there, and stays open before', async () => {
    const webp = await photo().webp().toBuffer();
    expect(walk(webpEndFinder, webp, 5)).toBe('ended');
    expect(walk(webpEndFinder, Buffer.concat([webp, randomBytes(100)]))).toBe('ended');
    expect(walk(webpEndFinder, webp.subarray(0, webp.length - 1))).toBe('open');
  });
});
