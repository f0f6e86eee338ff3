import { request, type Dispatcher } from 'undici';

/** How much of a receiver's answer is read: enough for a log line, never a large body. */
const MAX_RESPONSE_BYTES = 4096;

export interface WebhookResponse {
  statusCode: number;
  retryAfterMs?: number;
  body: string;
}

export interface PostOptions {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  dispatcher?: Dispatcher;
}

/**
 * POSTs one signed event. Redirects are not followed (a 3xx is a failed attempt), the
 * whole exchange is bounded by `timeoutMs`, and at most a few KB of the answer is read.
 */
export async function postWebhook({
  url,
  body,
  headers,
  timeoutMs,
  dispatcher,
}: PostOptions): Promise<WebhookResponse> {
  const response = await request(url, {
    method: 'POST',
    body,
    headers: { ...headers, 'content-type': 'application/json', 'user-agent': 'Cutout-Webhooks/1.0' },
    signal: AbortSignal.timeout(timeoutMs),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    dispatcher,
  });
  const text = await readCapped(response.body, MAX_RESPONSE_BYTES);
  return { statusCode: response.statusCode, retryAfterMs: retryAfterMs(response.headers['retry-after']), body: text };
}

async function readCapped(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (length >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
