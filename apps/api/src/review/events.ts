import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BatchStore } from '@cutout/shared/stores';
import type { ReviewRevocations } from './tokens.ts';
import { rateLimited } from '../http/rate-limit.ts';
import { reviewProgress } from './items.ts';
import type { ReviewScope } from './grant.ts';

export interface ProgressStreams {
  /**
   * Streams a batch's progress as Server-Sent Events until it ends, the link expires or is
   * revoked, the stream reaches its age limit (the browser then reconnects), or the client
   * leaves. Throws 429 when the link, or this process, has as many streams open as allowed.
   */
  open(request: FastifyRequest, reply: FastifyReply, scope: Extract<ReviewScope, { kind: 'batch' }>): void;
  /** Ends every open stream (the API is shutting down). */
  closeAll(): void;
}

export interface StreamLimits {
  perLink: number;
  perProcess: number;
  maxAgeMs: number;
}

/** How long the browser waits before reconnecting a stream that reached its age limit. */
const RECONNECT_MS = 1_000;

/**
 * Each stream reads its batch's counters and the link's revocation every `intervalMs` and
 * sends `progress` only when they changed; a comment every `heartbeatMs` keeps proxies from
 * closing an idle connection. Streams are counted per link and per process, so a leaked
 * link cannot hold an unbounded number of connections open.
 */
export function makeProgressStreams({
  batches,
  revocations,
  limits,
  intervalMs = 1_000,
  heartbeatMs = 15_000,
}: {
  batches: BatchStore;
  revocations: ReviewRevocations;
  limits: StreamLimits;
  intervalMs?: number;
  heartbeatMs?: number;
}): ProgressStreams {
  const open = new Set<() => void>();
  const perLink = new Map<string, number>();

  const admit = (link: string) => {
    if (open.size >= limits.perProcess)
      throw rateLimited('Too many progress streams are open on this server; the page falls back to polling', 5);
    if ((perLink.get(link) ?? 0) >= limits.perLink)
      throw rateLimited(
        `This review link already has ${limits.perLink} progress streams open; close a tab or retry later`,
        5,
      );
    perLink.set(link, (perLink.get(link) ?? 0) + 1);
  };
  const release = (link: string) => {
    const left = (perLink.get(link) ?? 1) - 1;
    if (left > 0) perLink.set(link, left);
    else perLink.delete(link);
  };

  return {
    open(request, reply, scope) {
      const link = scope.token;
      admit(link);
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': request.id,
      });
      const openedAt = Date.now();
      let last = '';
      let lastWrite = openedAt;
      let timer: NodeJS.Timeout | undefined;
      const write = (text: string) => {
        out.write(text);
        lastWrite = Date.now();
      };
      const stop = () => {
        if (!open.delete(stop)) return;
        clearTimeout(timer);
        release(link);
        if (!out.writableEnded) out.end();
      };
      const finish = (event: 'end' | 'expired' | 'revoked', data: unknown = {}) => {
        write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        stop();
      };
      open.add(stop);
      out.on('close', stop);
      write(`retry: ${RECONNECT_MS}\n\n`);

      const tick = async () => {
        try {
          if (Date.now() >= scope.grant.expiresAtMs) return finish('expired');
          const [batch, revokedAt] = await Promise.all([
            batches.get(scope.batch.id),
            revocations.revokedAt(scope.grant.id),
          ]);
          if (scope.grant.issuedAtMs <= revokedAt) {
            return finish('revoked', {
              error: {
                code: 'review_link_revoked',
                message: `This review link was revoked on ${new Date(revokedAt).toISOString()}`,
              },
            });
          }
          if (!batch) return finish('end');
          const progress = JSON.stringify(await reviewProgress(batches, batch));
          if (progress !== last) {
            last = progress;
            write(`event: progress\ndata: ${progress}\n\n`);
          } else if (Date.now() - lastWrite >= heartbeatMs) write(': keep-alive\n\n');
          // Verdicts still change after the batch ends, but the page updates those itself.
          if (batch.status !== 'processing') return finish('end');
          // Ended without an event: EventSource reconnects after `retry`, through the link's checks again.
          if (Date.now() - openedAt >= limits.maxAgeMs) return stop();
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
