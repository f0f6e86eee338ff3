/**
 * Where an image file ends, found by walking its structure as the bytes stream by: a few
 * counters of state per file, never a buffered copy. Bytes after the end (a phone's
 * trailer, a motion photo's video) are allowed; a file that stops before its end is not.
 */

/** `open`: the end is not reached yet; `ended`: it was; `damaged`: the bytes are not this format's structure. */
export type EndState = 'open' | 'ended' | 'damaged';

export interface EndFinder {
  push(chunk: Buffer): void;
  state(): EndState;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_MAX_CHUNK = 0x7fffffff;
const IEND = 0x49454e44;
const isLetter = (byte: number) => (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);

/**
 * PNG: the signature, then chunks of length (4 bytes), type (4 ASCII letters), data and
 * CRC (4 bytes), up to and including the IEND chunk. CRCs are not verified: a decoder does
 * that; this only decides whether the file is all there.
 */
export function pngEndFinder(): EndFinder {
  let state: EndState = 'open';
  let signatureSeen = 0;
  const header = Buffer.alloc(8);
  let headerFilled = 0;
  /** Data and CRC bytes left of the current chunk. */
  let skip = 0;
  let inIend = false;

  function push(chunk: Buffer): void {
    let at = 0;
    while (state === 'open' && at < chunk.length) {
      if (signatureSeen < PNG_SIGNATURE.length) {
        if (chunk[at] !== PNG_SIGNATURE[signatureSeen]) state = 'damaged';
        signatureSeen += 1;
        at += 1;
      } else if (skip > 0) {
        const taken = Math.min(skip, chunk.length - at);
        skip -= taken;
        at += taken;
        if (skip === 0 && inIend) state = 'ended';
      } else {
        const taken = Math.min(header.length - headerFilled, chunk.length - at);
        chunk.copy(header, headerFilled, at, at + taken);
        headerFilled += taken;
        at += taken;
        if (headerFilled < header.length) continue;
        headerFilled = 0;
        const length = header.readUInt32BE(0);
        if (length > PNG_MAX_CHUNK || !header.subarray(4, 8).every(isLetter)) state = 'damaged';
        skip = length + 4;
        inIend = header.readUInt32BE(4) === IEND;
      }
    }
  }
  return { push, state: () => state };
}

// JPEG walker states.
const SOI_FF = 0;
const SOI_D8 = 1;
/** Between segments: looking for the next 0xFF (stray bytes are skipped, as decoders do). */
const MARKER = 2;
/** After 0xFF: the marker code (more 0xFF are fill). */
const CODE = 3;
const LENGTH_HIGH = 4;
const LENGTH_LOW = 5;
const SEGMENT = 6;
/** Entropy-coded data after a start of scan. */
const SCAN = 7;
/** After 0xFF in the scan: 0x00 is a stuffed byte, RST0–7 continue the scan, anything else is a marker. */
const SCAN_FF = 8;

const EOI = 0xd9;
const SOS = 0xda;
const isRestart = (code: number) => code >= 0xd0 && code <= 0xd7;

/**
 * JPEG: SOI, then segments (0xFF, a marker code, a two-byte length that counts itself, the
 * payload); after each SOS the entropy-coded scan runs until a marker other than a stuffed
 * 0xFF00 or a restart marker; the file ends at EOI. A thumbnail inside an APP segment (with
 * its own EOI) is skipped with its segment. An EOI before any scan, or a second SOI, is damage.
 */
export function jpegEndFinder(): EndFinder {
  let state: EndState = 'open';
  let step = SOI_FF;
  let segmentCode = 0;
  let remaining = 0;
  let scanned = false;

  /** A marker code read after 0xFF, between segments or ending a scan. */
  function marker(code: number): void {
    if (code === 0xff) step = CODE;
    else if (code === EOI) state = scanned ? 'ended' : 'damaged';
    else if (code === 0xd8) state = 'damaged';
    else if (code === 0x00 || code === 0x01 || isRestart(code)) step = MARKER;
    else {
      segmentCode = code;
      step = LENGTH_HIGH;
    }
  }

  function segmentDone(): void {
    if (segmentCode === SOS) {
      scanned = true;
      step = SCAN;
    } else step = MARKER;
  }

  function push(chunk: Buffer): void {
    let at = 0;
    while (state === 'open' && at < chunk.length) {
      switch (step) {
        case SOI_FF:
        case SOI_D8:
          if (chunk[at++] !== (step === SOI_FF ? 0xff : 0xd8)) state = 'damaged';
          step += 1;
          break;
        case MARKER:
        case SCAN: {
          const ff = chunk.indexOf(0xff, at);
          if (ff === -1) at = chunk.length;
          else {
            at = ff + 1;
            step = step === SCAN ? SCAN_FF : CODE;
          }
          break;
        }
        case CODE:
          marker(chunk[at++]!);
          break;
        case SCAN_FF: {
          const code = chunk[at++]!;
          if (code === 0x00 || isRestart(code)) step = SCAN;
          else if (code !== 0xff) marker(code);
          break;
        }
        case LENGTH_HIGH:
          remaining = chunk[at++]! << 8;
          step = LENGTH_LOW;
          break;
        case LENGTH_LOW:
          remaining |= chunk[at++]!;
          if (remaining < 2) state = 'damaged';
          remaining -= 2;
          if (remaining === 0) segmentDone();
          else step = SEGMENT;
          break;
        case SEGMENT: {
          const taken = Math.min(remaining, chunk.length - at);
          remaining -= taken;
          at += taken;
          if (remaining === 0) segmentDone();
          break;
        }
      }
    }
  }
  return { push, state: () => state };
}

/** WebP: a RIFF header whose length field says how many bytes follow the first eight. */
export function webpEndFinder(): EndFinder {
  const header = Buffer.alloc(8);
  let seen = 0;
  function push(chunk: Buffer): void {
    if (seen < header.length) chunk.copy(header, seen, 0, Math.min(chunk.length, header.length - seen));
    seen += chunk.length;
  }
  return { push, state: () => (seen >= header.length && header.readUInt32LE(4) + 8 <= seen ? 'ended' : 'open') };
}

const FINDERS: Record<string, () => EndFinder> = {
  'image/png': pngEndFinder,
  'image/jpeg': jpegEndFinder,
  'image/webp': webpEndFinder,
};

/** The walker for an accepted image type; undefined for any other type. */
export function endFinderFor(mime: string): EndFinder | undefined {
  return FINDERS[mime]?.();
}
