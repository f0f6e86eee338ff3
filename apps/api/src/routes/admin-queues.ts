import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queues } from '@cutout/shared/infra';
import type { AuthFailures } from '../auth/failures.ts';
import { ApiError, sendError } from '../http/errors.ts';

const ADMIN_QUEUES_PATH = '/admin/queues';

/**
 * The bull-board queue dashboard, for operators only. Without ADMIN_API_KEY it is not
 * mounted at all (404 like any unknown path). Read-only: job records, not BullMQ, hold
 * what clients see, so retrying or removing a BullMQ job by hand would make them disagree.
 */
export async function adminQueueRoutes(
  app: FastifyInstance,
  { adminApiKey, queues, failures }: { adminApiKey?: string; queues: Queues; failures: AuthFailures },
): Promise<void> {
  if (!adminApiKey) return;
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({
    queues: [
      new BullMQAdapter(queues.removeBg, { readOnlyMode: true }),
      new BullMQAdapter(queues.webhooks, { readOnlyMode: true }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Cutout queues' } },
  });
  await app.register(async (admin) => {
    admin.addHook('onRequest', requireAdminKey(adminApiKey, failures));
    await admin.register(serverAdapter.registerPlugin(), { prefix: ADMIN_QUEUES_PATH });
  });
}

/**
 * Accepts the key as `X-API-KEY` (scripts) or as the password of HTTP basic auth, so a
 * browser can open the dashboard. Digests of equal length make the comparison constant-time.
 * A wrong key counts against the address's failed authentications, like a wrong API key.
 */
function requireAdminKey(adminApiKey: string, failures: AuthFailures) {
  const expected = digest(adminApiKey);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const presented = presentedKey(request);
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) return;
    reply.header('www-authenticate', 'Basic realm="Cutout queues", charset="UTF-8"');
    try {
      failures.refuseIfBlocked(request);
      if (presented === undefined)
        throw new ApiError(
          'missing_api_key',
          'Send the admin key in the X-API-KEY header or as the basic-auth password',
        );
      await failures.fail(request, new ApiError('invalid_api_key', 'The admin key is not valid'));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return sendError(request, reply, error);
    }
  };
}

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  const apiKey = Array.isArray(header) ? header[0] : header;
  if (apiKey) return apiKey;
  const match = /^Basic\s+(\S+)$/i.exec(request.headers.authorization ?? '');
  if (!match) return undefined;
  const credentials = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = credentials.indexOf(':');
  return colon >= 0 ? credentials.slice(colon + 1) : undefined;
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
