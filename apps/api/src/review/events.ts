import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BatchStore } from '@cutout/shared';
import { reviewProgress } from './items.ts';
import type { ReviewScope } from './grant.ts';

export interface ProgressStreams {
  /** Streams a batch's progress as Server-Sent Events until it ends, the link expires or the client leaves. */
  open(request: FastifyRequest, reply: FastifyReply, scope: Extract<ReviewScope, { kind: 'batch' }>): void;
  /** Ends every open stream (the API is shutting down). */
  closeAll(): void;
}

/**
 * Each stream reads its batch's counters every `intervalMs` (one HGETALL and one LRANGE)
 * and sends `progress` only when they changed; a comment every `heartbeatMs` keeps proxies
 * from closing an idle connection.
 */
export function makeProgressStreams({ batches, intervalMs = 1_000, heartbeatMs = 15_000 }: { batches: BatchStore; intervalMs?: number; heartbeatMs?: number }): ProgressStreams {
  const open = new Set<() => void>();

  return {
    open(request, reply, scope) {
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive',
        'x-accel-buffering': 'no', 'x-request-id': request.id,
      });
      let last = '';
      let lastWrite = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const write = (text: string) => {
        out.write(text);
        lastWrite = Date.now();
      };
      const stop = () => {
        clearTimeout(timer);
        open.delete(stop);
        if (!out.writableEnded) out.end();
      };
      const finish = (event: 'end' | 'expired') => {
        write(`event: ${event}\ndata: {}\n\n`);
        stop();
      };
      open.add(stop);
      out.on('close', stop);

      const tick = async () => {
        try {
          if (Date.now() >= scope.grant.expiresAtMs) return finish('expired');
          const batch = await batches.get(scope.batch.id);
          if (!batch) return finish('end');
          const progress = JSON.stringify(await reviewProgress(batches, batch));
          if (progress !== last) {
            last = progress;
            write(`event: progress\ndata: ${progress}\n\n`);
          } else if (Date.now() - lastWrite >= heartbeatMs) write(': keep-alive\n\n');
          // Verdicts still change after the batch ends, but the page updates those itself.
          if (batch.status !== 'processing') return finish('end');
        } catch (error) {
          request.log.warn({ err: error }, 'review progress stream read failed; retrying');
        }
        if (open.has(stop)) timer = setTimeout(() => void tick(), intervalMs);
      };
      void tick();
    },
    closeAll() {
      for (const stop of [...open]) stop();
    },
  };
}
