import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import { isMissingObject } from '@cutout/shared/infra';
import { RENDITION_MEDIA, type RenditionFormat } from '@cutout/shared/renditions';
import type { ApiKeyStore } from '../auth/api-keys.ts';
import type { ReviewRevocations } from './tokens.ts';
import type { AppDeps } from '../deps.ts';
import { ApiError, toApiError, unavailable } from '../http/errors.ts';
import { decodeOffsetCursor, pageSizeOf } from '../http/cursor.ts';
import { manifestFormat, manifestLines } from '../batches/results.ts';
import { ITEM_FILTERS, itemRecordPage, type ItemFilter } from '../batches/item-pages.ts';
import { jobInScope, makeRequireGrant, scopeOf } from './grant.ts';
import type { AuthFailures } from '../auth/failures.ts';
import type { Allowance } from '../http/rate-limit.ts';
import { reviewBase, reviewProgress, toReviewItem } from './items.ts';
import { makeProgressStreams } from './events.ts';
import { parseVerdict, recordVerdict } from './verdicts.ts';

const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));

/** Everything the page loads is ours: no CDN, no inline script, no framing. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-robots-tag': 'noindex, nofollow',
  'cache-control': 'no-store',
};

const ERROR_TITLES: Record<number, string> = {
  400: 'This link cannot be used',
  429: 'Too many requests with this link',
  401: 'This review link is not valid',
  404: 'Nothing to review here',
  410: 'This review link has expired',
  500: 'Something went wrong',
  503: 'The review page is unavailable right now',
};

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!);

/**
 * The review page: `/review/<link token>` serves the page, and the routes under it the
 * data it shows. A link is checked on every request (signature, expiry, the batch or job
 * still there); it opens only its own batch or job and works on no /v1 route.
 */
export async function reviewPageRoutes(
  app: FastifyInstance,
  deps: AppDeps & { apiKeys: ApiKeyStore; revocations: ReviewRevocations; failures: AuthFailures; perLink: Allowance },
  secret: string,
): Promise<void> {
  const { config, jobs, batches, storage } = deps;
  const pageHtml = readFileSync(`${PAGE_DIR}index.html`, 'utf8');
  const errorHtml = readFileSync(`${PAGE_DIR}error.html`, 'utf8');
  const requireGrant = makeRequireGrant({
    secret,
    batches,
    jobs,
    apiKeys: deps.apiKeys,
    revocations: deps.revocations,
    failures: deps.failures,
    perLink: deps.perLink,
  });
  const streams = makeProgressStreams({ batches, revocations: deps.revocations, limits: config.api.reviewStreams });
  const verdictDeps = { reviews: deps.reviews, redis: deps.redis, prefix: config.redis.prefix };
  app.addHook('preClose', async () => streams.closeAll());

  await app.register(fastifyStatic, {
    root: PAGE_DIR,
    prefix: '/review/assets/',
    decorateReply: false,
    index: false,
    allowedPath: (path) => /^\/[a-z-]+\.(css|js)$/.test(path),
    setHeaders: (res) => void res.header('cache-control', 'public, max-age=300'),
  });

  const errorPage = (reply: FastifyReply, error: ApiError) =>
    reply
      .status(error.statusCode)
      .headers({ ...PAGE_HEADERS, ...error.headers })
      .type('text/html; charset=utf-8')
      .send(
        errorHtml
          .replace('{{title}}', escapeHtml(ERROR_TITLES[error.statusCode] ?? 'This review link cannot be used'))
          .replace('{{message}}', escapeHtml(error.message))
          .replace(
            '{{hint}}',
            error.statusCode >= 500 || error.statusCode === 429
              ? 'Try again in a minute.'
              : 'Ask whoever shared this link for a new one.',
          ),
      );

  interface TokenParams {
    Params: { token: string };
  }
  interface ItemParams {
    Params: { token: string; jobId: string };
  }

  // The page itself: an error page (not JSON) when the link cannot be used, and no data in
  // either. The route's own error handler also catches what its hook throws (the link
  // refused, the rate limit, or its 503 while Redis is away).
  const page = async (_request: FastifyRequest<TokenParams>, reply: FastifyReply) =>
    reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(pageHtml);
  const pageErrors = (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error);
    if (apiError.statusCode >= 500) request.log.error({ err: error }, 'review page could not be served');
    else request.log.info({ code: apiError.code, status: apiError.statusCode }, 'review link refused');
    return errorPage(reply, apiError);
  };
  app.get<TokenParams>('/review/:token', { onRequest: requireGrant, errorHandler: pageErrors }, page);
  app.get<TokenParams>('/review/:token/', { onRequest: requireGrant, errorHandler: pageErrors }, page);

  const guarded = { onRequest: requireGrant, onSend: noStore };

  app.get<TokenParams>('/review/:token/data', guarded, async (request) => {
    const scope = scopeOf(request);
    const base = reviewBase(scope.token);
    const expiresAt = new Date(scope.grant.expiresAtMs).toISOString();
    if (scope.kind === 'job')
      return {
        object: 'review',
        kind: 'job',
        expires_at: expiresAt,
        batch: null,
        job: toReviewItem(scope.token, scope.job),
        manifest: null,
      };
    return {
      object: 'review',
      kind: 'batch',
      expires_at: expiresAt,
      batch: await reviewProgress(batches, scope.batch),
      job: null,
      manifest: { csv: `${base}/manifest?format=csv`, jsonl: `${base}/manifest?format=jsonl` },
    };
  });

  app.get<TokenParams>('/review/:token/events', { onRequest: requireGrant }, async (request, reply) => {
    const scope = scopeOf(request);
    if (scope.kind !== 'batch') throw new ApiError('not_found', 'Progress events exist for batch review links only');
    streams.open(request, reply, scope);
  });

  app.get<TokenParams & { Querystring: { filter?: string; limit?: string; cursor?: string } }>(
    '/review/:token/items',
    guarded,
    async (request) => {
      const scope = scopeOf(request);
      const { filter = 'all', limit = '48', cursor } = request.query;
      if (!ITEM_FILTERS.includes(filter as ItemFilter))
        throw new ApiError('invalid_request', `filter must be one of ${ITEM_FILTERS.join(', ')}`);
      if (scope.kind === 'job') {
        pageSizeOf(limit); // refused as for a batch, though one item fits any page
        const matches =
          filter === 'all' ||
          (filter === 'rejected'
            ? scope.job.review?.verdict === 'rejected'
            : filter === 'quality_flagged'
              ? scope.job.qualityFlagged === 1
              : scope.job.status === filter);
        return {
          data: matches && decodeOffsetCursor(cursor) === 0 ? [toReviewItem(scope.token, scope.job)] : [],
          next_cursor: null,
        };
      }
      const { records, nextCursor } = await itemRecordPage(
        { batches, jobs, reviews: deps.reviews },
        scope.batch.id,
        filter as ItemFilter,
        { limit: pageSizeOf(limit), cursor },
      );
      return { data: records.map((record) => toReviewItem(scope.token, record)), next_cursor: nextCursor };
    },
  );

  app.get<ItemParams & { Params: { kind: string } }>(
    '/review/:token/items/:jobId/thumbs/:kind',
    { onRequest: requireGrant },
    async (request, reply) => {
      const record = await jobInScope(scopeOf(request), jobs, request.params.jobId);
      const key =
        request.params.kind === 'original'
          ? record.originalThumbKey
          : request.params.kind === 'cutout'
            ? record.resultThumbKey
            : undefined;
      if (!key) throw new ApiError('not_found', 'No thumbnail of this kind for this job');
      const body = await storage.getStream(key).catch((error: unknown) => {
        if (isMissingObject(error)) throw new ApiError('not_found', 'The thumbnail is no longer stored');
        throw unavailable();
      });
      // A thumbnail never changes once written; the browser may keep it while the link lives.
      return reply
        .type('image/webp')
        .header('cache-control', 'private, max-age=3600')
        .header('x-content-type-options', 'nosniff')
        .send(body);
    },
  );

  app.get<ItemParams>('/review/:token/items/:jobId/result', { onRequest: requireGrant }, async (request, reply) => {
    const record = await jobInScope(scopeOf(request), jobs, request.params.jobId);
    if (record.status !== 'succeeded' || !record.resultKey)
      throw new ApiError('not_found', `This job has no result (it is ${record.status})`);
    // An attachment, so following the link downloads the PNG instead of leaving the page.
    const url = await storage.presign(record.resultKey, Math.min(config.api.resultUrlTtlMs, 900_000), {
      downloadName: `${record.clientRef ?? record.id}.png`,
    });
    return reply.header('cache-control', 'no-store').redirect(url, 302);
  });

  app.get<ItemParams & { Params: { name: string } }>(
    '/review/:token/items/:jobId/renditions/:name',
    { preHandler: requireGrant },
    async (request, reply) => {
      const record = await jobInScope(scopeOf(request), jobs, request.params.jobId);
      const renditions = record.status === 'succeeded' ? (record.renditions ?? {}) : {};
      const stored = Object.hasOwn(renditions, request.params.name) ? renditions[request.params.name] : undefined;
      if (!stored || 'error' in stored) throw new ApiError('not_found', 'This job has no such rendition');
      const format = Object.keys(RENDITION_MEDIA).find(
        (name) => RENDITION_MEDIA[name as RenditionFormat].contentType === stored.contentType,
      ) as RenditionFormat | undefined;
      const extension = format ? RENDITION_MEDIA[format].extension : 'bin';
      const url = await storage.presign(stored.key, Math.min(config.api.resultUrlTtlMs, 900_000), {
        downloadName: `${record.clientRef ?? record.id}-${request.params.name}.${extension}`,
      });
      return reply.header('cache-control', 'no-store').redirect(url, 302);
    },
  );

  app.put<ItemParams>('/review/:token/items/:jobId/review', guarded, async (request) => {
    const scope = scopeOf(request);
    const verdict = parseVerdict(request.body);
    const record = await recordVerdict(verdictDeps, await jobInScope(scope, jobs, request.params.jobId), verdict);
    request.log.info({ job_id: record.id, verdict: 'rejected' }, 'review verdict recorded');
    return toReviewItem(scope.token, record);
  });

  app.delete<ItemParams>('/review/:token/items/:jobId/review', guarded, async (request) => {
    const scope = scopeOf(request);
    const record = await recordVerdict(verdictDeps, await jobInScope(scope, jobs, request.params.jobId), null);
    request.log.info({ job_id: record.id }, 'review verdict cleared');
    return toReviewItem(scope.token, record);
  });

  app.get<TokenParams & { Querystring: { format?: string } }>(
    '/review/:token/manifest',
    { onRequest: requireGrant },
    async (request, reply) => {
      const scope = scopeOf(request);
      if (scope.kind !== 'batch') throw new ApiError('not_found', 'A manifest exists for batch review links only');
      const format = manifestFormat(request.query.format, request.headers.accept);
      if (!format) throw new ApiError('invalid_request', 'format must be jsonl or csv');
      const lines = manifestLines(
        { batches, jobs, storage, resultUrlTtlMs: config.api.resultUrlTtlMs },
        scope.batch.id,
        format,
        scope.batch.renditionNames,
      );
      return reply
        .header('cache-control', 'no-store')
        .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="${scope.batch.id}.${format}"`)
        .send(Readable.from(lines));
    },
  );
}

async function noStore(_request: FastifyRequest, reply: FastifyReply, payload: unknown) {
  reply.header('cache-control', 'no-store');
  return payload;
}
