import type { FastifyInstance } from 'fastify';
import { evictionPolicy, formatDuration } from '@cutout/shared';
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

export function healthRoutes(app: FastifyInstance, { redis, storage, upstream, config }: AppDeps): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  async function upstreamStatus() {
    const [holds, rate, pauseMs] = await Promise.all([upstream.holds(), upstream.rate(), upstream.pauseRemainingMs()]);
    const keys = holds.upstream_unauthorized;
    const credit = holds.upstream_out_of_credit;
    const details = [
      keys && `ByByBG rejects the API key (401) since ${keys.since}; jobs are held and the key is probed until it works`,
      credit && `ByByBG says the account is out of credit (402) since ${credit.since}; jobs are held, one call is probed every ${formatDuration(config.bybybg.creditProbeIntervalMs)}, and a job still waiting after ${formatDuration(config.bybybg.outOfCreditBudgetMs)} fails with upstream_out_of_credit`,
      !keys && !credit && pauseMs > 0 && `ByByBG rate limit: queue paused for ${pauseMs} ms`,
    ].filter(Boolean);
    const reason = keys ? 'upstream_unauthorized' : credit ? 'upstream_out_of_credit' : null;
    return {
      ok: reason === null,
      ...(details.length > 0 ? { detail: details.join('; ') } : {}),
      reason,
      rate_per_second: rate ? Math.round(rate.ratePerSecond * 100) / 100 : null,
      rate_mode: rate?.mode ?? null,
      rate_reason: rate?.reason ?? null,
    };
  }

  app.get('/readyz', async (_request, reply) => {
    const [redisCheck, s3Check] = await Promise.all([
      check(async () => {
        const policy = await evictionPolicy(redis);
        if (policy !== 'noeviction') return `maxmemory-policy is ${policy}, needs noeviction`;
      }),
      check(() => storage.ping()),
    ]);
    const ready = redisCheck.ok && s3Check.ok;
    const upstreamCheck = ready ? await upstreamStatus() : { ok: false, detail: 'unknown while Redis or S3 is unreachable' };
    // A bad ByByBG key or an empty account degrades the service, but the API still accepts and keeps jobs: stay in rotation.
    const status = !ready ? 'not_ready' : upstreamCheck.ok ? 'ready' : 'degraded';
    return reply.status(ready ? 200 : 503).send({ status, checks: { redis: redisCheck, s3: s3Check, upstream: upstreamCheck } });
  });
}
