import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import sharp from 'sharp';
import { adminRoutes } from './admin.ts';
import { handleError, sendError } from './errors.ts';
import type { FaultPatch } from './faults.ts';
import { removeBgRoutes } from './remove-bg.ts';
import { makeResultStore } from './result-store.ts';
import { makeEmulatorState } from './state.ts';
import { makeStats } from './stats.ts';

export interface EmulatorOptions {
  /** Valid API keys; replaceable at run time with `PUT /_keys`. */
  keys: readonly string[];
  /** Initial fault settings over `DEFAULT_FAULTS` (10 req/s per key, no faults, image mode). */
  faults?: FaultPatch;
  logger?: Logger | false;
  /** Source of fault draws; inject a fixed sequence to make fault tests deterministic. */
  random?: () => number;
  /** Clock for the token bucket and result expiry; inject a fake one to test refills without sleeping. */
  now?: () => number;
  /** Upload size limit, default 50 MB; above it the answer is 413. */
  maxUploadBytes?: number;
  /** Decoded pixel limit, default sharp's (268 M); above it the answer is 400. */
  maxImagePixels?: number;
  /** How long `json-url` results stay downloadable, default 10 minutes. */
  resultTtlMs?: number;
}

const MB = 1024 * 1024;

/** The ByByBG emulator, built but not listening (`server.ts` listens; tests may `inject`). */
export function buildEmulator(options: EmulatorOptions): FastifyInstance {
  const { random = Math.random, now = Date.now } = options;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger as FastifyBaseLogger } : { logger: false }),
    // Hung requests never end by themselves; closing must still be prompt.
    forceCloseConnections: true,
  });

  const state = makeEmulatorState({ keys: options.keys, faults: options.faults, now });
  const stats = makeStats();
  const results = makeResultStore({ ttlMs: options.resultTtlMs ?? 10 * 60_000, maxEntries: 1000, now });
  let fixed: Promise<Buffer> | undefined;
  // Built once per app, lazily, so apps that never use fixedResult never pay for it.
  const fixedPng = (): Promise<Buffer> =>
    (fixed ??= sharp({ create: { width: 1, height: 1, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .png()
      .toBuffer());

  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, `no route for ${request.method} ${request.url.split('?')[0]}`),
  );

  app.register(removeBgRoutes, {
    state,
    stats,
    results,
    random,
    fixedPng,
    maxUploadBytes: options.maxUploadBytes ?? 50 * MB,
    maxImagePixels: options.maxImagePixels,
  });
  app.register(adminRoutes, { state, stats, results });
  return app;
}
