import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { evictionPolicy, formatDuration, type Metrics } from '@cutout/shared/infra';
import { healthOperations } from '../contract/health.ts';
import { routeOf } from '../contract/register.ts';
import type { RouteOptions } from '../deps.ts';

const CHECK_TIMEOUT_MS = 2_000;

async function check(run: () => Promise<string | undefined>): Promise<{ ok: boolean; detail?: string }> {
  try {
    const detail = await Promise.race([
      run(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS).unref(),
      ),
    ]);
    return detail ? { ok: false, detail } : { ok: true };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : 'unreachable' };
  }
}

/** Liveness, readiness and metrics: public, for load balancers and Prometheus. */
export const healthRoutes: FastifyPluginAsync<RouteOptions & { metrics: Metrics }> = async (
  plugin,
  { deps, guards, metrics },
) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  const ops = healthOperations();
  const { redis, storage, upstream, queues, log, config } = deps;

  app.route({ ...routeOf(ops.getHealth, guards), handler: async () => ({ status: 'ok' as const }) });

  // Queue depths are read from Redis at scrape time; while Redis is down they are left out and the rest still answers.
  const untrack = metrics.trackQueues([queues.removeBg, queues.webhooks], (error) =>
    log.debug({ err: error }, 'queue depth not collected'),
  );
  app.addHook('onClose', async () => untrack());
  app.route({
    ...routeOf(ops.getMetrics, guards),
    handler: async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  });

  async function upstreamStatus() {
    const [holds, rate, pauseMs] = await Promise.all([upstream.holds(), upstream.rate(), upstream.pauseRemainingMs()]);
    const keys = holds.upstream_unauthorized;
    const credit = holds.upstream_out_of_credit;
    const details = [
      keys &&
        `ByByBG rejects the API key (401) since ${keys.since}; jobs are held and the key is probed until it works`,
      credit &&
        `ByByBG says the account is out of credit (402) since ${credit.since}; jobs are held, one call is probed every ${formatDuration(config.bybybg.creditProbeIntervalMs)}, and a job still waiting after ${formatDuration(config.bybybg.outOfCreditBudgetMs)} fails with upstream_out_of_credit`,
      !keys && !credit && pauseMs > 0 && `ByByBG rate limit: queue paused for ${pauseMs} ms`,
    ].filter(Boolean);
    const reason = keys ? ('upstream_unauthorized' as const) : credit ? ('upstream_out_of_credit' as const) : null;
    return {
      ok: reason === null,
      ...(details.length > 0 ? { detail: details.join('; ') } : {}),
      reason,
      rate_per_second: rate ? Math.round(rate.ratePerSecond * 100) / 100 : null,
      rate_mode: rate?.mode ?? null,
      rate_reason: rate?.reason ?? null,
    };
  }

  app.route({
    ...routeOf(ops.getReadiness, guards),
    handler: async (_request, reply) => {
      const [redisCheck, s3Check] = await Promise.all([
        check(async () => {
          const policy = await evictionPolicy(redis);
          return policy === 'noeviction' ? undefined : `maxmemory-policy is ${policy}, needs noeviction`;
        }),
        check(() => storage.ping().then(() => undefined)),
      ]);
      const ready = redisCheck.ok && s3Check.ok;
      const upstreamCheck = ready
        ? await upstreamStatus()
        : { ok: false, detail: 'unknown while Redis or S3 is unreachable' };
      // A bad ByByBG key or an empty account degrades the service, but the API still accepts and keeps jobs: stay in rotation.
      const status = !ready ? 'not_ready' : upstreamCheck.ok ? 'ready' : 'degraded';
      return reply
        .status(ready ? 200 : 503)
        .send({ status, checks: { redis: redisCheck, s3: s3Check, upstream: upstreamCheck } });
    },
  });
};
