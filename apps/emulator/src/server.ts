import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildEmulator, type EmulatorOptions } from './app.ts';

export interface StartEmulatorOptions extends EmulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1: the admin endpoints have no auth. */
  host?: string;
}

export interface RunningEmulator {
  /** Base URL, e.g. `http://127.0.0.1:41234`; the client posts to `${url}/v1/remove-bg`. */
  url: string;
  app: FastifyInstance;
  /** Stops listening and destroys open connections, hung ones included. */
  close(): Promise<void>;
}

/** Builds and listens; used by `main.ts` and by tests that need a real socket. */
export async function startEmulator(options: StartEmulatorOptions): Promise<RunningEmulator> {
  const { port = 0, host = '127.0.0.1', ...emulatorOptions } = options;
  const app = buildEmulator(emulatorOptions);
  await app.listen({ port, host });
  const address = app.server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl}:${address.port}`,
    app,
    // Idempotent, so a test's afterEach and a signal handler may both call it.
    close: () => (closing ??= app.close()),
  };
}
