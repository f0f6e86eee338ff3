import type { FastifyInstance } from 'fastify';
import { evictionPolicy } from '@cutout/shared';
import type { AppDeps } from '../app.ts';

const CHECK_TIMEOUT_MS = 2_000;

async function check(run: () => Promise<string | void>): Promise<{ ok: boolean; detail?: string }> {
  try {
    const detail = await Promise.race([
      run(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS).unref()),
    ]);
    return detail ? { ok: false, detail } : { ok: true };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : 'unreachable' };
  }
}

export function healthRoutes(app: FastifyInstance, { redis, storage }: AppDeps): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const [redisCheck, s3Check] = await Promise.all([
      check(async () => {
        const policy = await evictionPolicy(redis);
        if (policy !== 'noeviction') return `maxmemory-policy is ${policy}, needs noeviction`;
      }),
      check(() => storage.ping()),
    ]);
    const ready = redisCheck.ok && s3Check.ok;
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: { redis: redisCheck, s3: s3Check } });
  });
}
