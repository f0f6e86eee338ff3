import { interceptors, request, type Dispatcher } from 'undici';
import { checkUrl, UnsafeUrlError, type UrlPolicy } from '../security/url-guard.ts';
import { ImageInputError } from './image-error.ts';
import type { ImageSource } from './image-store.ts';

export interface ImageFetcher {
  /** Opens `url` as an image source; throws a 422 the client can act on when it cannot. */
  open(url: string): Promise<ImageSource>;
}

const MAX_REDIRECTS = 3;

/** Retryable: a timeout, a refused connection or a 5xx may pass on a later attempt. */
const unreachable = (message: string, retryable = true) =>
  new ImageInputError(422, 'image_url_unreachable', message, retryable);
const refused = (error: UnsafeUrlError) =>
  new ImageInputError(422, 'invalid_image_url', `image_url is not allowed: ${error.message}`);

/**
 * Fetches `image_url`s through the SSRF guard (checked when submitted and again for every
 * connection, redirects included), with a timeout and the upload size limit.
 */
export function makeImageFetcher({
  dispatcher,
  policy,
  timeoutMs,
  maxBytes,
}: {
  dispatcher: Dispatcher;
  policy: UrlPolicy;
  timeoutMs: number;
  maxBytes: number;
}): ImageFetcher {
  const following = dispatcher.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTS }));

  return {
    async open(url) {
      let parsed: URL;
      try {
        parsed = checkUrl(url, policy);
      } catch (error) {
        if (error instanceof UnsafeUrlError) throw refused(error);
        throw error;
      }
      // One deadline for the whole fetch, cleared as soon as the body is done with.
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      const { signal } = controller;
      let response: Dispatcher.ResponseData;
      try {
        response = await request(parsed, {
          dispatcher: following,
          signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          headers: { accept: 'image/*' },
        });
      } catch (error) {
        clearTimeout(timer);
        throw describe(error, signal, timeoutMs);
      }
      const done = () => {
        clearTimeout(timer);
        response.body.on('error', () => undefined).destroy();
      };
      if (response.statusCode < 200 || response.statusCode >= 300) {
        done();
        // A 4xx (gone, forbidden) will not change by retrying; a 5xx or 429 may.
        throw unreachable(
          `image_url answered HTTP ${response.statusCode}`,
          response.statusCode >= 500 || response.statusCode === 429,
        );
      }
      if (Number(response.headers['content-length']) > maxBytes) {
        done();
        throw new ImageInputError(413, 'file_too_large', `The image is larger than the limit of ${maxBytes} bytes`);
      }
      return limited(response.body, { maxBytes, signal, timeoutMs, done });
    },
  };
}

function describe(error: unknown, signal: AbortSignal, timeoutMs: number): ImageInputError {
  if (error instanceof UnsafeUrlError) return refused(error);
  if (signal.aborted) return unreachable(`image_url did not answer within ${timeoutMs} ms`);
  const code = (error as { code?: string }).code;
  return unreachable(`image_url could not be fetched${code ? ` (${code})` : ''}`);
}

/** The body as chunks, stopping (and saying so) once it passes `maxBytes`. */
function limited(
  body: Dispatcher.ResponseData['body'],
  { maxBytes, signal, timeoutMs, done }: { maxBytes: number; signal: AbortSignal; timeoutMs: number; done: () => void },
): ImageSource {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let bytes = 0;
  let over = false;
  return {
    chunks: {
      async next() {
        if (over) return { value: undefined, done: true };
        let result: IteratorResult<Buffer>;
        try {
          result = await iterator.next();
        } catch (error) {
          done();
          throw describe(error, signal, timeoutMs);
        }
        if (result.done) {
          done();
          return result;
        }
        bytes += result.value.length;
        if (bytes > maxBytes) {
          over = true;
          done();
          return { value: undefined, done: true };
        }
        return result;
      },
    },
    truncated: () => over,
    discard: done,
  };
}
