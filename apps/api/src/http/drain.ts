import type { FastifyInstance } from 'fastify';
import type { Logger } from '@cutout/shared/infra';

const IDLE_SWEEP_MS = 100;

/**
 * Stops listening and lets in-flight requests finish (new ones on kept-alive connections
 * get 503), for at most `graceMs`: an orchestrator kills the process soon after anyway,
 * and a bounded stop is better than an unbounded one. Then the remaining connections are
 * cut so the close completes.
 */
export async function closeWithGrace(app: FastifyInstance, graceMs: number, log: Logger): Promise<void> {
  const closing = app.close();
  // close() ends the connections idle at that moment only; one that finishes its request
  // later would stay open until its keep-alive timeout (72 s) and hold the close up.
  const sweeper = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => resolve('expired'), graceMs);
  });
  try {
    if ((await Promise.race([closing.then(() => 'closed' as const), expired])) === 'expired') {
      log.warn({ graceMs }, 'requests still in flight after the shutdown grace; closing their connections');
      app.server.closeAllConnections();
      await closing;
    }
  } finally {
    clearTimeout(timer);
    clearInterval(sweeper);
  }
}
