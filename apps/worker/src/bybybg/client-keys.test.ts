import { Agent } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { makeByByBGClient, type ByByBGClientDeps } from './client.ts';
import { UpstreamError } from './errors.ts';
import {
  PNG,
  capturedLogger,
  closedPortUrl,
  fileBytes,
  imageStream,
  json,
  readForm,
  rejection,
  reply,
  silentLogger,
  startUpstream,
  type Handler,
  type Upstream,
} from './testing.ts';

const OLD_KEY = 'sk_live_revoked_AAAAAAAAAAAA';
const NEW_KEY = 'sk_live_current_BBBBBBBBBBBB';
const agent = new Agent();
let upstream: Upstream | undefined;

afterEach(async () => {
  await upstream?.close();
  upstream = undefined;
});
afterAll(() => agent.close());

interface Seen {
  key: string;
  fileOk: boolean;
}

/** An upstream that accepts only the keys in `valid` (mutable, to "fix" a key mid-test). */
async function keyedUpstream(valid: Set<string>, onRequest: (key: string) => Promise<void> | void = () => undefined) {
  const seen: Seen[] = [];
  const handler: Handler = async (req, res) => {
    const key = String(req.headers['x-api-key']);
    const form = await readForm(req);
    seen.push({ key, fileOk: (await fileBytes(form)).equals(PNG) });
    await onRequest(key);
    if (!valid.has(key)) return json(res, 401, { error: { message: `Invalid API key ${key}` } });
    reply(res, 200, PNG, { 'content-type': 'image/png' });
  };
  upstream = await startUpstream(handler);
  return { url: upstream.url, seen };
}

function client(url: string, deps: Partial<ByByBGClientDeps> = {}) {
  return makeByByBGClient({
    apiUrl: url,
    apiKeys: [OLD_KEY, NEW_KEY],
    timeoutMs: 5000,
    dispatcher: agent,
    resultDispatcher: agent,
    log: silentLogger,
    ...deps,
  });
}

const input = { openImage: imageStream(PNG), contentType: 'image/png' };

describe('key rotation', () => {
  it('retries a 401 at once with the next key and re-sends the whole image', async () => {
    const { url, seen } = await keyedUpstream(new Set([NEW_KEY]));
    const calls: [number | string, number][] = [];
    const perJob: [number | string, number][] = [];
    const bybybg = client(url, { onCall: (status, keyIndex) => calls.push([status, keyIndex]) });

    const result = await bybybg.removeBackground({
      ...input,
      onCall: (status, keyIndex) => perJob.push([status, keyIndex]),
    });

    expect(result.keyIndex).toBe(1);
    expect(seen).toEqual([
      { key: OLD_KEY, fileOk: true },
      { key: NEW_KEY, fileOk: true },
    ]);
    expect(calls).toEqual([
      [401, 0],
      [200, 1],
    ]);
    expect(perJob).toEqual(calls);
    expect(bybybg.keyStates()).toEqual([
      { index: 0, state: 'unauthorized', since: expect.any(String) },
      { index: 1, state: 'ok' },
    ]);
  });

  it('skips a key known to be unauthorized on later calls', async () => {
    const { url, seen } = await keyedUpstream(new Set([NEW_KEY]));
    const bybybg = client(url);
    await bybybg.removeBackground(input);
    seen.length = 0;

    await bybybg.removeBackground(input);

    expect(seen.map((entry) => entry.key)).toEqual([NEW_KEY]);
  });

  it('reports unauthorized, retryable, when every key gets a 401', async () => {
    const { url, seen } = await keyedUpstream(new Set());
    const bybybg = client(url);

    const error = await rejection(bybybg.removeBackground(input));

    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ code: 'upstream_unauthorized', kind: 'unauthorized', retryable: true });
    expect(seen).toHaveLength(2);
    expect(bybybg.keyStates().map((key) => key.state)).toEqual(['unauthorized', 'unauthorized']);
  });

  it('fails fast without calling upstream while every key is marked unauthorized', async () => {
    const { url, seen } = await keyedUpstream(new Set());
    const bybybg = client(url);
    await rejection(bybybg.removeBackground(input));
    seen.length = 0;

    const error = await rejection(bybybg.removeBackground(input));

    expect(error).toMatchObject({ kind: 'unauthorized' });
    expect(seen).toHaveLength(0);
  });

  it('clears a key that a concurrent call saw succeed', async () => {
    let releaseSecondOldKeyCall: () => void = () => undefined;
    const newKeyUsed = new Promise<void>((resolve) => {
      releaseSecondOldKeyCall = resolve;
    });
    let oldKeyCalls = 0;
    // The first call gets 401 on the old key; the second call's old-key request is answered 200
    // only after the first call moved on to the new key (so after it marked the old key).
    const valid = new Set([NEW_KEY]);
    const { url } = await keyedUpstream(valid, async (key) => {
      if (key === NEW_KEY) return releaseSecondOldKeyCall();
      oldKeyCalls += 1;
      if (oldKeyCalls === 2) {
        await newKeyUsed;
        valid.add(OLD_KEY);
      }
    });
    const bybybg = client(url);

    const [first, second] = await Promise.all([bybybg.removeBackground(input), bybybg.removeBackground(input)]);

    expect([first.keyIndex, second.keyIndex].sort()).toEqual([0, 1]);
    expect(bybybg.keyStates().map((key) => key.state)).toEqual(['ok', 'ok']);
  });
});

describe('probing keys', () => {
  it('reports unauthorized and keeps the marks while every key still gets a 401', async () => {
    const { url } = await keyedUpstream(new Set());
    const bybybg = client(url);
    await rejection(bybybg.removeBackground(input));

    expect(await bybybg.probe()).toEqual({ kind: 'unauthorized' });
    expect(bybybg.keyStates().map((key) => key.state)).toEqual(['unauthorized', 'unauthorized']);
  });

  it('restores a key that answers anything but 401 and uses it again', async () => {
    const valid = new Set<string>();
    const { url, seen } = await keyedUpstream(valid);
    const bybybg = client(url);
    await rejection(bybybg.removeBackground(input));
    valid.add(NEW_KEY); // the operator fixed the account
    seen.length = 0;

    expect(await bybybg.probe()).toEqual({ kind: 'answered', status: 200 });
    expect(seen.map((entry) => entry.key)).toEqual([OLD_KEY, NEW_KEY]);
    expect(bybybg.keyStates().map((key) => key.state)).toEqual(['unauthorized', 'ok']);
    expect((await bybybg.removeBackground(input)).keyIndex).toBe(1);
  });

  it('reports unreachable when upstream cannot be reached', async () => {
    const bybybg = client(await closedPortUrl(), { timeoutMs: 500 });

    expect(await bybybg.probe()).toEqual({ kind: 'unreachable' });
  });
});

describe('accounting for each call', () => {
  /** A ledger of what the client reported; `refuseAfter` reservations succeed, then reserve throws. */
  function ledger(refuseAfter = Infinity) {
    const events: string[] = [];
    let reserved = 0;
    const spend = {
      async reserve() {
        if (reserved >= refuseAfter) throw new Error('budget refused');
        reserved += 1;
        events.push('reserve');
      },
      sent: () => void events.push('sent'),
      async release() {
        events.push('release');
      },
    };
    return { spend, events };
  }

  it('reserves every request before it is made, including the retry with the next key', async () => {
    const { url, seen } = await keyedUpstream(new Set([NEW_KEY]));
    const { spend, events } = ledger();

    await client(url).removeBackground({ ...input, spend });

    expect(seen).toHaveLength(2);
    expect(events).toEqual(['reserve', 'sent', 'reserve', 'sent']);
  });

  it('makes no request when the reservation is refused, and passes its error through', async () => {
    const { url, seen } = await keyedUpstream(new Set([NEW_KEY]));
    const { spend } = ledger(1);

    const error = await rejection(client(url).removeBackground({ ...input, spend }));

    expect((error as Error).message).toBe('budget refused');
    expect(seen.map((entry) => entry.key)).toEqual([OLD_KEY]);
  });

  it('gives the reservation back when the connection is refused, and keeps it when ByByBG timed out', async () => {
    const refused = ledger();
    await rejection(
      client(await closedPortUrl(), { timeoutMs: 500 }).removeBackground({ ...input, spend: refused.spend }),
    );
    expect(refused.events).toEqual(['reserve', 'release']);

    upstream = await startUpstream(() => undefined); // takes the upload, never answers
    const timedOut = ledger();
    await rejection(client(upstream.url, { timeoutMs: 300 }).removeBackground({ ...input, spend: timedOut.spend }));
    expect(timedOut.events).toEqual(['reserve', 'sent']);
  });
});

describe('keeping the keys secret', () => {
  it('never puts a key in an error message or a log line', async () => {
    const { log, text } = capturedLogger();
    const messages: string[] = [];
    let mode: 'echo-400' | 'echo-html' | 'all-401' | 'hang' = 'echo-400';
    upstream = await startUpstream(async (req, res) => {
      const key = String(req.headers['x-api-key']);
      if (mode === 'hang') return;
      await readForm(req);
      if (mode === 'echo-400') return json(res, 400, { error: { message: `Bad request for key ${key}` } });
      if (mode === 'echo-html') return reply(res, 200, `${key} <html>`, { 'content-type': 'text/html' });
      json(res, 401, { error: { message: `Invalid API key ${key}` } });
    });
    const bybybg = client(upstream.url, { log, timeoutMs: 200 });

    for (const next of ['echo-400', 'echo-html', 'hang', 'all-401'] as const) {
      mode = next;
      const error = await rejection(bybybg.removeBackground(input));
      messages.push(String((error as Error).message), String((error as Error).stack));
    }
    await bybybg.probe();

    expect(messages.join('\n')).toContain('[REDACTED]');
    for (const key of [OLD_KEY, NEW_KEY]) {
      expect(messages.join('\n')).not.toContain(key);
      expect(text()).not.toContain(key);
    }
    expect(text()).toContain('"keyIndex":0');
  });
});
