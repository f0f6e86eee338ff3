import { interceptors, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { discard, readCapped } from './body.ts';
import { UpstreamError, classifyStatus } from './errors.ts';
import { makeDeadline, toUpstreamError } from './outcomes.ts';
import { interpretDownload, type ResultBytes } from './result.ts';

/** Fetches a result ByByBG returned as a URL instead of bytes. */

export interface DownloadDeps { dispatcher: Dispatcher; timeoutMs: number; maxResultBytes: number; log: Logger; now: () => number }

export type ResultDownloader = (url: URL, keyIndex: number, caller: AbortSignal | undefined) => Promise<ResultBytes>;

export function makeResultDownloader(deps: DownloadDeps): ResultDownloader {
  const { timeoutMs, log, now } = deps;
  // Result URLs (a CDN, presigned storage) may redirect; the API endpoint itself never should.
  const dispatcher = deps.dispatcher.compose(interceptors.redirect({ maxRedirections: 3 }));

  return async function downloadResult(url, keyIndex, caller) {
    // A fresh budget of the same length: the removal itself may have used most of the first one.
    const limits = makeDeadline(timeoutMs, caller);
    const started = now();
    try {
      // No API key here: the result URL may live on another host. The URL is not logged either:
      // a presigned URL is a credential.
      const response = await request(url, {
        method: 'GET',
        headers: { accept: 'image/*' },
        signal: limits.signal,
        dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      log.debug({ status: response.statusCode, ms: now() - started, keyIndex }, 'ByByBG result download');
      if (classifyStatus(response.statusCode) !== null) {
        await discard(response.body);
        throw downloadStatusError(response.statusCode);
      }
      const body = await readCapped(response.body, deps.maxResultBytes, response.headers['content-length']);
      return interpretDownload(body, response.headers['content-type']);
    } catch (error) {
      throw toUpstreamError(error, limits, "ByByBG's result URL");
    }
  };
}

function downloadStatusError(status: number): UpstreamError {
  const kind = classifyStatus(status)?.kind;
  const message = `ByByBG's result URL answered HTTP ${status}`;
  // A throttled or failing CDN may recover; a missing or forbidden result will not.
  return kind === 'transient' || kind === 'rate_limited'
    ? new UpstreamError({ kind: 'transient', code: 'upstream_unavailable', message, status })
    : new UpstreamError({ kind: 'permanent', code: 'upstream_bad_response', message, status });
}
