import { interceptors, request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { UnsafeUrlError } from '@cutout/shared/security';
import { discard, quoteStart, readCapped } from './body.ts';
import { UpstreamError, classifyStatus } from './errors.ts';
import { makeDeadline, toUpstreamError } from './exchange-errors.ts';
import { interpretDownload, type ResultBytes } from './result.ts';

/**
 * Fetches a result ByByBG returned as a URL instead of bytes. The URL comes from upstream's
 * answer and may redirect anywhere, so it is fetched like a client's image_url: through the
 * SSRF-guarded agent, which checks every hop's address at connect time.
 */

export interface DownloadDeps {
  /** The SSRF-guarded agent (createGuardedAgent); redirects are followed on top of it, each hop checked. */
  dispatcher: Dispatcher;
  timeoutMs: number;
  maxResultBytes: number;
  log: Logger;
  now: () => number;
}

export type ResultDownloader = (url: URL, keyIndex: number, caller: AbortSignal | undefined) => Promise<ResultBytes>;

const MAX_REDIRECTS = 3;

export function makeResultDownloader(deps: DownloadDeps): ResultDownloader {
  const { timeoutMs, log, now } = deps;
  // Result URLs (a CDN, presigned storage) may redirect; the API endpoint itself never should.
  const dispatcher = deps.dispatcher.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));

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
      try {
        return interpretDownload(body, response.headers['content-type']);
      } catch (error) {
        // The body is whatever the URL's host chose to send: operators may see its start, clients never.
        log.debug({ keyIndex, start: quoteStart(body) }, 'ByByBG result URL answered no image');
        throw error;
      }
    } catch (error) {
      if (error instanceof UnsafeUrlError) throw refused(error);
      throw toUpstreamError(error, limits, "ByByBG's result URL");
    }
  };
}

/**
 * A refused address is permanent: the guard would refuse it again, and another call to
 * ByByBG costs a credit. An empty DNS answer is transient, like ENOTFOUND.
 */
function refused(cause: UnsafeUrlError): UpstreamError {
  if (cause.reason === 'unresolvable') {
    return new UpstreamError({
      kind: 'transient',
      code: 'upstream_unavailable',
      message: "ByByBG's result URL has a host that resolved to no address",
      cause,
    });
  }
  const message =
    "ByByBG's result URL (or a redirect from it) leads to an address that is not public, so it was not downloaded";
  return new UpstreamError({ kind: 'permanent', code: 'upstream_bad_response', message, cause });
}

function downloadStatusError(status: number): UpstreamError {
  const kind = classifyStatus(status)?.kind;
  const message = `ByByBG's result URL answered HTTP ${status}`;
  // A throttled or failing CDN may recover; a missing or forbidden result will not.
  return kind === 'transient' || kind === 'rate_limited'
    ? new UpstreamError({ kind: 'transient', code: 'upstream_unavailable', message, status })
    : new UpstreamError({ kind: 'permanent', code: 'upstream_bad_response', message, status });
}
