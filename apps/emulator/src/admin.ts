import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { sendError } from './errors.ts';
import { formatIssues, parseFaultPatch } from './faults.ts';
import type { ResultStore } from './result-store.ts';
import type { EmulatorState } from './state.ts';
import { maskKey, type Stats } from './stats.ts';

export interface AdminDeps {
  state: EmulatorState;
  stats: Stats;
  results: ResultStore;
}

const keysBodySchema = z.strictObject({ keys: z.array(z.string().min(1)).max(10_000) });

/**
 * Control and inspection endpoints for tests and benchmarks. No auth: the emulator is a
 * dev/test tool that listens on loopback by default.
 */
export async function adminRoutes(app: FastifyInstance, { state, stats, results }: AdminDeps): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/_faults', async () => state.faults());

  app.put('/_faults', async (request, reply) => {
    const patch = parseFaultPatch(request.body);
    if (!patch.ok) return sendError(reply, 400, `invalid fault settings: ${patch.message}`);
    const settings = state.updateFaults(patch.value);
    request.log.info({ faults: settings }, 'fault settings changed');
    return settings;
  });

  app.put('/_keys', async (request, reply) => {
    const parsed = keysBodySchema.safeParse(request.body);
    if (!parsed.success) return sendError(reply, 400, `invalid keys: ${formatIssues(parsed.error)}`);
    state.setKeys(parsed.data.keys);
    // Masked: the answer may be logged by whatever test harness called it.
    const masked = parsed.data.keys.map(maskKey);
    request.log.info({ keys: masked }, 'API keys replaced');
    return { keys: masked };
  });

  app.get('/_stats', async () => stats.snapshot());

  app.post('/_stats/reset', async () => {
    stats.reset();
    return stats.snapshot();
  });

  app.get<{ Params: { name: string } }>('/_results/:name', async (request, reply) => {
    const id = request.params.name.replace(/\.png$/, '');
    const png = results.get(id);
    if (!png) return sendError(reply, 404, 'result not found or expired');
    return reply.type('image/png').send(png);
  });
}
