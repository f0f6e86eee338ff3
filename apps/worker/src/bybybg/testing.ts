import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** Test helpers for the ByByBG client: a loopback upstream and a log you can read back. */

/** A valid 1x1 PNG, so the client's magic-byte sniffing sees a real image. */
export const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

export interface Upstream {
  url: string;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** `host`: another loopback address (127.0.0.2) stands in for a second machine. */
export async function startUpstream(handler: Handler, host = '127.0.0.1'): Promise<Upstream> {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((error: unknown) => {
      res.statusCode = 599;
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () => {
      server.closeAllConnections(); // a test that hangs a response must not hang the suite
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Parses a multipart request with the platform's own parser (not ours), so the test is independent. */
export async function readForm(req: IncomingMessage): Promise<FormData> {
  const body = await readBody(req);
  return new Response(body, { headers: { 'content-type': req.headers['content-type'] ?? '' } }).formData();
}

export async function fileBytes(form: FormData, field = 'file'): Promise<Buffer> {
  const file = form.get(field);
  if (!file || typeof file === 'string') throw new Error(`no file in field ${field}`);
  return Buffer.from(await file.arrayBuffer());
}

export function reply(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, headers);
  res.end(body);
}

export function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  reply(res, status, JSON.stringify(value), { 'content-type': 'application/json', ...headers });
}

export function imageStream(bytes: Buffer): () => Promise<Readable> {
  return async () => Readable.from([bytes]);
}

export function capturedLogger(): { log: Logger; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), text: () => lines.join('') };
}

export const silentLogger: Logger = pino({ level: 'silent' });

/** A port nothing listens on: bind one, remember it, release it. */
export async function closedPortUrl(): Promise<string> {
  const upstream = await startUpstream(() => undefined);
  await upstream.close();
  return upstream.url;
}

/** Resolves with the error a promise rejects with; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}
