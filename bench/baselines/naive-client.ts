import { setTimeout as sleep } from 'node:timers/promises';
import { FormData, request } from 'undici';
import { mapLimit } from '../lib/load.ts';

export interface NaiveOutcome {
  succeeded: number;
  failed: number;
  calls: number;
  rateLimited: number;
}

/**
 * The way most shops call a rate-limited API: a fixed number of calls in flight, each
 * retrying its own 429s with exponential backoff and full jitter, no shared knowledge of
 * the limit. Gives up on an image after `maxAttempts` (bounded, like every loop here).
 */
export async function runNaiveClient({
  apiUrl,
  apiKey,
  photos,
  inFlight = 40,
  baseDelayMs = 250,
  maxDelayMs = 30_000,
  maxAttempts = 20,
}: {
  apiUrl: string;
  apiKey: string;
  photos: Buffer[];
  inFlight?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxAttempts?: number;
}): Promise<NaiveOutcome> {
  const outcome: NaiveOutcome = { succeeded: 0, failed: 0, calls: 0, rateLimited: 0 };
  await mapLimit(photos.length, inFlight, async (index) => {
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const form = new FormData();
      form.append('file', new Blob([photos[index]!], { type: 'image/png' }), `${index}.png`);
      outcome.calls += 1;
      try {
        const response = await request(`${apiUrl}/v1/remove-bg`, {
          method: 'POST',
          body: form,
          headers: { 'x-api-key': apiKey },
        });
        await response.body.dump();
        if (response.statusCode === 200) {
          outcome.succeeded += 1;
          return;
        }
        if (response.statusCode === 429) outcome.rateLimited += 1;
        else if (response.statusCode < 500) break;
      } catch {
        // a network error is retried like a 5xx
      }
      const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
      await sleep(Math.random() * ceiling);
    }
    outcome.failed += 1;
  });
  return outcome;
}
