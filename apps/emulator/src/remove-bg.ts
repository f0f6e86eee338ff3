import { setTimeout as sleep } from 'node:timers/promises';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NoForegroundError, NotAnImageError } from './cutout.ts';
import { CUTOUT_MODES, cutoutFor, type CutoutMode } from './problem-cutouts.ts';
import { ClientError, sendError } from './errors.ts';
import { decideFault, latencyFor, type ResponseMode } from './faults.ts';
import type { ResultStore } from './result-store.ts';
import type { EmulatorState } from './state.ts';
import type { Outcome, Stats } from './stats.ts';
import { rateLimitHeaders } from './token-bucket.ts';

export interface RemoveBgDeps {
  state: EmulatorState;
  stats: Stats;
  results: ResultStore;
  random: () => number;
  maxUploadBytes: number;
  maxImagePixels?: number;
  /** The small PNG answered when `fixedResult` is on. */
  fixedPng: () => Promise<Buffer>;
}

interface ResultBody {
  contentType: string;
  body: Buffer;
}

function apiKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  return typeof header === 'string' && header !== '' ? header : undefined;
}

/** `POST /v1/remove-bg` in its own scope, so its body parsers and hooks stay local. */
export async function removeBgRoutes(app: FastifyInstance, deps: RemoveBgDeps): Promise<void> {
  const { state, stats, results, random } = deps;

  // Any body type reaches the handler unparsed, so auth, rate limit and faults come before
  // body checks (as upstream), and a non-multipart body gets our 400 instead of fastify's 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));
  await app.register(multipart, {
    limits: { fileSize: deps.maxUploadBytes, files: 4, fields: 50, fieldSize: 64 * 1024, parts: 60 },
  });

  // Calls holding a credit: one that is not answered 200 gives it back.
  const charged = new WeakSet<FastifyRequest>();

  // Auth → forbidden → credit → rate limit, before any body is read.
  app.addHook('onRequest', async (request, reply) => {
    reply.raw.once('close', stats.begin());
    const key = apiKeyOf(request);
    if (key === undefined) return sendError(reply, 401, 'missing API key: send it in the X-API-KEY header');
    if (!state.isValidKey(key)) return sendError(reply, 401, 'invalid API key');
    if (state.faults().forbiddenKeys.includes(key)) return sendError(reply, 403, 'access denied for this API key');
    if (!state.takeCredit()) return sendError(reply, 402, 'insufficient credits: top up the account to continue');
    charged.add(request);
    const token = state.takeToken(key);
    if (token === null) return;
    reply.headers(rateLimitHeaders(token.limit, token.result, state.faults().rateLimitHeaders));
    if (!token.result.allowed) return sendError(reply, 429, 'rate limit exceeded');
  });

  // Every answer that goes through fastify is counted here, errors included; hijacked
  // replies (hang, truncate) are counted where they are decided.
  app.addHook('onSend', async (request, reply, payload) => {
    stats.record(apiKeyOf(request), String(reply.statusCode) as Outcome);
    if (reply.statusCode !== 200 && charged.delete(request)) state.refundCredit();
    return payload;
  });

  app.post('/v1/remove-bg', async (request, reply) => {
    const settings = state.faults();
    const key = apiKeyOf(request);
    const delayMs = latencyFor(settings, random);
    if (delayMs > 0 && !(await waitUnlessClosed(delayMs, reply))) {
      // The client gave up during the latency: nobody is left to answer.
      reply.hijack();
      return;
    }

    const fault = decideFault(settings, random);
    if (fault.kind !== 'none') request.log.debug({ fault: fault.kind }, 'fault injected');
    if (fault.kind === 'hang') {
      stats.record(key, 'hang');
      reply.hijack();
      // Discard the upload so the client is not stuck sending; the socket stays open.
      request.raw.resume();
      return;
    }
    if (fault.kind === 'error') return sendError(reply, fault.status, 'upstream error (injected by the emulator)');

    const { upload, fields } = await readUpload(request);
    // A request may ask for its own problem case (an option a test forwards), over the fault setting.
    const mode = CUTOUT_MODES.find((name) => name === fields[CUTOUT_FIELD]) ?? settings.cutout;
    const png = settings.fixedResult
      ? await deps.fixedPng()
      : await cutout(mode, upload, settings.tolerance, deps.maxImagePixels);
    const result = formatResult(settings.responseMode, png, request, results);

    if (fault.kind === 'truncate') {
      stats.record(key, 'truncated');
      sendTruncated(reply, result);
      return;
    }
    return reply.type(result.contentType).send(result.body);
  });
}

/** Resolves false when the connection closes first, so a hung-up client does not hold a timer. */
async function waitUnlessClosed(ms: number, reply: FastifyReply): Promise<boolean> {
  const closed = new AbortController();
  const onClose = (): void => closed.abort();
  reply.raw.once('close', onClose);
  try {
    await sleep(ms, undefined, { signal: closed.signal });
    return true;
  } catch {
    return false;
  } finally {
    reply.raw.off('close', onClose);
  }
}

/** The option field that picks a problem cutout for one request. */
const CUTOUT_FIELD = 'emulate_cutout';

/** The bytes of the field `file`, and the text fields (ByByBG "options", ignored but for CUTOUT_FIELD). */
async function readUpload(request: FastifyRequest): Promise<{ upload: Buffer; fields: Record<string, string> }> {
  if (!request.isMultipart()) {
    throw new ClientError(400, 'expected multipart/form-data with the image in the field "file"');
  }
  let upload: Buffer | undefined;
  const fields: Record<string, string> = {};
  for await (const part of request.parts()) {
    if (part.type === 'field') fields[part.fieldname] = String(part.value);
    if (part.type !== 'file') continue;
    if (part.fieldname === 'file' && upload === undefined) upload = await part.toBuffer();
    // Busboy only moves on to the next part once this one's stream is consumed.
    else part.file.resume();
  }
  if (upload === undefined || upload.length === 0) {
    throw new ClientError(400, 'missing image: send it in the multipart field "file"');
  }
  return { upload, fields };
}

async function cutout(
  mode: CutoutMode,
  upload: Buffer,
  tolerance: number,
  maxPixels: number | undefined,
): Promise<Buffer> {
  try {
    return await cutoutFor(mode, upload, { tolerance, maxPixels });
  } catch (error) {
    // The cutout module knows nothing of HTTP; an undecodable upload is the client's 400.
    if (error instanceof NotAnImageError || error instanceof NoForegroundError)
      throw new ClientError(400, error.message);
    throw error;
  }
}

function formatResult(mode: ResponseMode, png: Buffer, request: FastifyRequest, results: ResultStore): ResultBody {
  switch (mode) {
    case 'image':
      return { contentType: 'image/png', body: png };
    case 'json-base64':
      return json({ data: { result_b64: png.toString('base64') } });
    case 'json-url': {
      const id = results.put(png);
      return json({ data: { result_url: `${request.protocol}://${request.host}/_results/${id}.png` } });
    }
    case 'bad':
      // What a misconfigured proxy in front of the API might answer: 200 but not a result.
      return { contentType: 'text/html; charset=utf-8', body: Buffer.from('<html>oops</html>') };
  }
}

function json(value: unknown): ResultBody {
  return { contentType: 'application/json; charset=utf-8', body: Buffer.from(JSON.stringify(value)) };
}

/** Promise the full length, send half, then drop the connection, like a proxy dying mid-body. */
function sendTruncated(reply: FastifyReply, result: ResultBody): void {
  reply.hijack();
  const headers: Record<string, string | number | string[]> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value;
  const raw = reply.raw;
  raw.writeHead(200, { ...headers, 'content-type': result.contentType, 'content-length': result.body.length });
  raw.write(result.body.subarray(0, Math.floor(result.body.length / 2)), () => raw.destroy());
}
