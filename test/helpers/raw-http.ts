import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends a request's headers and only the first part of its body (the declared length is
 * never reached), and resolves with the answer the server gives meanwhile. A server that
 * waits for the whole body before answering never answers: the promise rejects after
 * `waitMs`, with the body still unsent.
 */
export function answerWhileBodyPending(
  baseUrl: string,
  {
    method = 'POST',
    path,
    headers,
    firstChunk,
    declaredLength,
    waitMs = 10_000,
  }: {
    method?: string;
    path: string;
    headers: Record<string, string>;
    firstChunk: string | Buffer;
    declaredLength: number;
    waitMs?: number;
  },
): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${waitMs} ms while the body was still pending`));
    }, waitMs);
    const finish = () => {
      const answer = parseAnswer(Buffer.concat(chunks).toString('latin1'));
      if (!answer) return false;
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
      return true;
    };
    socket.on('data', (data) => {
      chunks.push(data);
      finish();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (!finish()) {
        clearTimeout(timer);
        reject(new Error('connection closed without a complete answer'));
      }
    });
    const lines = [
      `${method} ${path} HTTP/1.1`,
      `host: ${hostname}:${port}`,
      `content-length: ${declaredLength}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    socket.write(firstChunk);
  });
}

/** A complete answer (headers and a body of its content-length), or null while more is due. */
function parseAnswer(text: string): RawAnswer | null {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine, ...headerLines] = text.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(
    headerLines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  const body = text.slice(end + 4);
  const length = Number(headers['content-length'] ?? 0);
  if (Buffer.byteLength(body, 'latin1') < length) return null;
  return { status: Number(statusLine!.split(' ')[1]), headers, body: body.slice(0, length) };
}
