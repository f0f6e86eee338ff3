import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { sha256Hex } from '@cutout/shared/infra';
import type { BatchRecord } from '@cutout/shared/stores';
import { toBatchView } from '@cutout/shared/views';
import { batchOperations } from '../contract/batches.ts';
import { fieldSchemas } from '../contract/fields.ts';
import { routeOf } from '../contract/register.ts';
import type { RouteOptions } from '../deps.ts';
import { onceFor, type StoredResponse } from '../http/idempotency.ts';
import { ownBatch } from '../http/owned.ts';
import { rerunBatch } from '../jobs/reruns.ts';
import { cancelBatchItems } from '../batches/cancel.ts';
import { STREAMED_BODY_TYPES } from '../batches/intake.ts';
import { batchJobPage } from '../batches/job-pages.ts';
import { leaveBodiesUnread } from '../intake/json-body.ts';
import { manifestFormat, manifestLines } from '../batches/results.ts';
import { createdView, submitBatch } from '../batches/submit.ts';

/** Batches: submit, read, the results manifest and the jobs, rerun, cancel. */
export const batchRoutes: FastifyPluginAsync<RouteOptions> = async (plugin, { deps, guards, contract }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>();
  const ops = batchOperations(contract);
  const { config, storage, jobs, batches, queues, idempotency } = deps;
  const fields = fieldSchemas(contract.rules);
  const view = async (batch: BatchRecord) =>
    toBatchView(batch, { publicBaseUrl: config.api.publicBaseUrl, recentEnds: await batches.recentEnds(batch.id) });
  const answer = (reply: FastifyReply, stored: StoredResponse & { replayed: boolean }) =>
    reply
      .status(stored.statusCode)
      .headers({
        ...(stored.location ? { location: stored.location } : {}),
        ...(stored.replayed ? { 'idempotent-replayed': 'true' } : {}),
      })
      .send(stored.body);

  // The body (JSON items, a manifest, a form) is read as it streams in, never parsed whole by fastify.
  await plugin.register(async (scope) => {
    leaveBodiesUnread(scope, STREAMED_BODY_TYPES);
    scope.withTypeProvider<ZodTypeProvider>().route({
      ...routeOf(ops.createBatch, guards),
      handler: async (request, reply) => answer(reply, await submitBatch(deps, request, fields)),
    });
  });

  app.route({
    ...routeOf(ops.getBatch, guards),
    handler: async (request) => view(await ownBatch(batches, request)),
  });

  app.route({
    ...routeOf(ops.getBatchResults, guards),
    handler: async (request, reply) => {
      const batch = await ownBatch(batches, request);
      const format = manifestFormat(request.query.format, request.headers.accept) ?? 'jsonl';
      const lines = manifestLines(
        { batches, jobs, storage, resultUrlTtlMs: config.api.resultUrlTtlMs },
        batch.id,
        format,
        batch.renditionNames,
      );
      return reply
        .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="${batch.id}.${format}"`)
        .send(Readable.from(lines));
    },
  });

  app.route({
    ...routeOf(ops.listBatchJobs, guards),
    handler: async (request) => batchJobPage(deps, (await ownBatch(batches, request)).id, request.query),
  });

  app.route({
    ...routeOf(ops.rerunBatch, guards),
    handler: async (request, reply) => {
      const source = await ownBatch(batches, request);
      const { items: selection, ...settings } = request.body;
      const fingerprint = sha256Hex(JSON.stringify([source.id, selection, settings]));
      return answer(
        reply,
        await onceFor(idempotency, source.tenantId, request.headers['idempotency-key'], fingerprint, async () => {
          const { batch, rejected } = await rerunBatch(deps, source, selection, settings, request.log);
          request.log.info({ batch_id: batch.id, rerun_of: source.id, items: batch.total }, 'batch rerun accepted');
          return {
            statusCode: 202,
            location: `${config.api.publicBaseUrl}/v1/batches/${batch.id}`,
            body: createdView(deps, batch, rejected),
          };
        }),
      );
    },
  });

  app.route({
    ...routeOf(ops.cancelBatch, guards),
    handler: async (request) => {
      const batch = await ownBatch(batches, request);
      if (batch.status === 'processing') {
        await batches.markCanceled(batch.id);
        const canceled = await cancelBatchItems(
          { batches, outbox: deps.webhookOutbox, jobs, removeBg: queues.removeBg },
          batch.id,
        );
        request.log.info({ batch_id: batch.id, canceled }, 'batch canceled');
      }
      return view((await batches.get(batch.id)) ?? batch);
    },
  });
};
