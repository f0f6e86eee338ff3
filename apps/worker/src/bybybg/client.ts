import { Readable } from 'node:stream';
import { getGlobalDispatcher, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { MAX_RESULT_BYTES, discard, mimeType, readCapped } from './body.ts';
import { makeResultDownloader } from './download.ts';
import { UpstreamError, classifyStatus, neverSent, parseRateLimitHeaders, type RateLimitInfo } from './errors.ts';
import { makeKeyRing, type KeyState } from './key-ring.ts';
import { makeBoundary, multipartBody, multipartLength, type MultipartParts } from './multipart.ts';
import { errorCode, errorFromResponse, makeDeadline, toUpstreamError } from './exchange-errors.ts';
import { redactKeys } from './redact.ts';
import { interpretSuccess } from './result.ts';

interface RemoveBgInput {
  /** A fresh stream of the original on every call: a retry with another key re-reads it. */
  openImage: () => Promise<Readable>;
  contentType: string;
  filename?: string;
  /** Forwarded to ByByBG as extra text fields. */
  options?: Record<string, string>;
  signal?: AbortSignal;
  /** Each upstream HTTP request this call makes (a 401 then a retry with the next key is two). */
  onCall?: (status: number | 'network_error', keyIndex: number) => void;
  /** The original's size, when known: the upload then has a Content-Length instead of chunked encoding. */
  byteLength?: number;
  /** Accounts for each HTTP request before it is made (a tenant's budget); see CallSpend. */
  spend?: CallSpend;
}

/**
 * Counts a call before it is made. `reserve` may throw to stop the request (its error passes
 * through unchanged); `sent` spends the reservation; `release` gives it back when the
 * request never left (the connection was never made).
 */
export interface CallSpend {
  reserve(): Promise<void>;
  sent(): void;
  release(): Promise<void>;
}

/**
 * What one probe request learnt: `answered` with the status of the first key ByByBG did
 * not refuse, `unauthorized` when it refused every key, `unreachable` when nothing came back.
 */
export type ProbeOutcome = { kind: 'answered'; status: number } | { kind: 'unauthorized' } | { kind: 'unreachable' };

interface RemoveBgResult {
  body: Buffer;
  contentType: string;
  keyIndex: number;
  rateLimit: RateLimitInfo;
}

export interface ByByBGClient {
  /** Throws UpstreamError for every upstream outcome; errors from `openImage` pass through unchanged. */
  removeBackground(input: RemoveBgInput): Promise<RemoveBgResult>;
  keyStates(): KeyState[];
  /** One cheap request per key, in order, until a key answers anything but 401. */
  probe(): Promise<ProbeOutcome>;
}

export interface ByByBGClientDeps {
  apiUrl: string;
  apiKeys: string[];
  timeoutMs: number;
  /** For the ByByBG endpoint, which the operator configured; the global dispatcher by default. */
  dispatcher?: Dispatcher;
  /**
   * The SSRF-guarded agent (createGuardedAgent) that result URLs from ByByBG's answers are
   * downloaded through: required, so no download can bypass the guard.
   */
  resultDispatcher: Dispatcher;
  log: Logger;
  /** Every HTTP request to /v1/remove-bg (probes included), for metrics and credit accounting. */
  onCall?: (status: number | 'network_error', keyIndex: number) => void;
  now?: () => number;
  maxResultBytes?: number;
}

/** A 1x1 transparent PNG: the smallest valid image a key probe can send. */
const PROBE_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

interface Upload {
  image: Readable;
  contentType: string;
  filename: string;
  options: Record<string, string>;
  byteLength?: number;
  onCall?: RemoveBgInput['onCall'];
}

export function makeByByBGClient(deps: ByByBGClientDeps): ByByBGClient {
  const { apiKeys, timeoutMs, log } = deps;
  if (apiKeys.length === 0 || apiKeys.some((key) => !key.trim() || /[\r\n]/.test(key))) {
    throw new Error('ByByBG API keys must be non-empty single-line strings'); // says which rule, never the key
  }
  const endpoint = `${deps.apiUrl.replace(/\/+$/, '')}/v1/remove-bg`;
  const now = deps.now ?? Date.now;
  const maxResultBytes = deps.maxResultBytes ?? MAX_RESULT_BYTES;
  const keys = makeKeyRing(apiKeys.length, now);
  const dispatcher = deps.dispatcher ?? getGlobalDispatcher();
  const download = makeResultDownloader({ dispatcher: deps.resultDispatcher, timeoutMs, maxResultBytes, log, now });

  function report(
    upload: Upload,
    status: number | 'network_error',
    keyIndex: number,
    started: number,
    error?: unknown,
  ): void {
    const ms = now() - started;
    if (status === 'network_error') log.debug({ status, ms, keyIndex, code: errorCode(error) }, 'ByByBG call failed');
    else log.debug({ status, ms, keyIndex }, 'ByByBG call');
    deps.onCall?.(status, keyIndex);
    upload.onCall?.(status, keyIndex);
  }

  async function post(keyIndex: number, upload: Upload, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const parts: MultipartParts = {
      boundary: makeBoundary(),
      fields: upload.options,
      file: { field: 'file', filename: upload.filename, contentType: upload.contentType, stream: upload.image },
    };
    const headers: Record<string, string> = {
      'x-api-key': apiKeys[keyIndex] ?? '',
      'content-type': `multipart/form-data; boundary=${parts.boundary}`,
      accept: 'image/*, application/json;q=0.9, */*;q=0.1',
    };
    if (upload.byteLength !== undefined) headers['content-length'] = String(multipartLength(parts, upload.byteLength));
    const started = now();
    try {
      const response = await request(endpoint, {
        method: 'POST',
        headers,
        body: Readable.from(multipartBody(parts), { objectMode: false }),
        signal,
        dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      report(upload, response.statusCode, keyIndex, started);
      return response;
    } catch (error) {
      report(upload, 'network_error', keyIndex, started, error);
      throw error;
    }
  }

  /** `post`, with the request accounted for in `spend`: spent once it may have reached ByByBG. */
  async function spendOn(
    spend: CallSpend | undefined,
    send: () => Promise<Dispatcher.ResponseData>,
  ): Promise<Dispatcher.ResponseData> {
    try {
      const response = await send();
      spend?.sent();
      return response;
    } catch (error) {
      if (neverSent(error)) await spend?.release();
      else spend?.sent();
      throw error;
    }
  }

  async function attempt(keyIndex: number, input: RemoveBgInput): Promise<RemoveBgResult | 'unauthorized'> {
    // Before the original is opened: a call the budget refuses costs no S3 read either.
    await input.spend?.reserve();
    const limits = makeDeadline(timeoutMs, input.signal);
    const image = await input.openImage();
    let sourceError: unknown;
    // A failing original (S3) is reported as itself, not as an upstream failure.
    image.on('error', (error) => {
      sourceError = error;
    });
    try {
      const response = await spendOn(input.spend, () => post(keyIndex, uploadOf(input, image), limits.signal));
      if (response.statusCode === 401) {
        await discard(response.body);
        if (keys.markUnauthorized(keyIndex)) log.warn({ keyIndex }, 'ByByBG rejected an API key; trying the next one');
        return 'unauthorized';
      }
      if (classifyStatus(response.statusCode) !== null) throw await errorFromResponse(response, now());
      if (keys.markOk(keyIndex)) log.info({ keyIndex }, 'ByByBG accepts an API key again');
      const rateLimit = parseRateLimitHeaders(response.headers, now());
      const body = await readCapped(response.body, maxResultBytes, response.headers['content-length']);
      const source = interpretSuccess(body, response.headers['content-type']);
      const result = source.kind === 'url' ? await download(source.url, keyIndex, input.signal) : source;
      return { body: result.body, contentType: result.contentType, keyIndex, rateLimit };
    } catch (error) {
      throw toUpstreamError(error, limits, 'ByByBG', sourceError);
    } finally {
      image.destroy();
    }
  }

  return {
    async removeBackground(input) {
      const tried = new Set<number>();
      try {
        for (;;) {
          const keyIndex = keys.firstUsable(tried);
          if (keyIndex === undefined) throw allKeysUnauthorized();
          tried.add(keyIndex);
          const outcome = await attempt(keyIndex, input);
          if (outcome !== 'unauthorized') return outcome;
        }
      } catch (error) {
        // Upstream text ends up in messages; a key it echoes must not reach a client or a log.
        throw redactKeys(error, apiKeys);
      }
    },

    keyStates: () => keys.states(),

    async probe() {
      for (let keyIndex = 0; keyIndex < keys.size; keyIndex++) {
        const limits = makeDeadline(timeoutMs, undefined);
        const upload: Upload = {
          image: Readable.from([PROBE_PNG]),
          contentType: 'image/png',
          filename: 'probe.png',
          options: {},
        };
        try {
          const response = await post(keyIndex, upload, limits.signal);
          await discard(response.body);
          if (response.statusCode === 401) {
            keys.markUnauthorized(keyIndex);
            continue;
          }
          if (keys.markOk(keyIndex)) log.info({ keyIndex }, 'ByByBG accepts an API key again');
          return { kind: 'answered', status: response.statusCode };
        } catch (error) {
          // Unreachable upstream says nothing about the keys: report "not yet" and keep the marks.
          log.warn({ keyIndex, code: errorCode(error) }, 'ByByBG probe failed');
          return { kind: 'unreachable' };
        } finally {
          upload.image.destroy();
        }
      }
      return { kind: 'unauthorized' };
    },
  };
}

function uploadOf(input: RemoveBgInput, image: Readable): Upload {
  // A client-supplied option named `file` would shadow the image field.
  const { file: _ignored, ...options } = input.options ?? {};
  const filename = input.filename ?? `image.${EXTENSIONS[mimeType(input.contentType) ?? ''] ?? 'bin'}`;
  const upload: Upload = { image, contentType: input.contentType, filename, options };
  if (input.byteLength !== undefined) upload.byteLength = input.byteLength;
  if (input.onCall) upload.onCall = input.onCall;
  return upload;
}

function allKeysUnauthorized(): UpstreamError {
  return new UpstreamError({
    kind: 'unauthorized',
    code: 'upstream_unauthorized',
    message: 'ByByBG rejected every configured API key (401)',
    status: 401,
  });
}
