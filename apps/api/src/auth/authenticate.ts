import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler, onSendHookHandler } from 'fastify';
import type { Logger } from '@cutout/shared/infra';
import { isWellFormedApiKey, type ApiKeyStore, type StoredApiKey } from './api-keys.ts';
import { looksLikeReviewToken } from '../review/tokens.ts';
import { ApiError } from '../http/errors.ts';
import type { AuthFailures } from './failures.ts';
import type { AllowanceTerms, Scope } from '@cutout/shared/stores';
import type { Allowance } from '../http/rate-limit.ts';

declare module 'fastify' {
  interface FastifyRequest {
    auth?: StoredApiKey;
    /** On a route with `allowanceInRead`: the key's allowance, for the handler's read to count. */
    deferredAllowance?: DeferredAllowance;
  }
  interface FastifyContextConfig {
    /**
     * The handler's read counts the key's allowance in its own script (a status poll is one
     * Redis command): the guard leaves it to the handler, and onSend counts it for an answer
     * sent without it (`countDeferredAllowance`). A key without the route's scope is counted
     * by the guard as on every route.
     */
    allowanceInRead?: boolean;
  }
}

interface DeferredAllowance {
  terms: AllowanceTerms;
  counted: boolean;
}

export interface AuthDeps {
  apiKeys: Pick<ApiKeyStore, 'authenticate'>;
  failures: AuthFailures;
  perKey: Allowance;
  perKeyTerms: (request: FastifyRequest) => AllowanceTerms;
}

const presentedKey = (request: FastifyRequest): string | undefined => {
  const header = request.headers['x-api-key'];
  return Array.isArray(header) ? header[0] : header;
};

/** The key's record, or the 401 that says why not. The key is never logged. */
async function identify(apiKeys: AuthDeps['apiKeys'], key: string | undefined): Promise<StoredApiKey | ApiError> {
  if (!key) return new ApiError('missing_api_key', 'Send your API key in the X-API-KEY header');
  if (looksLikeReviewToken(key))
    return new ApiError(
      'review_link_not_api_key',
      'A review link opens the review page only; the API takes an API key',
    );
  // A typo or a truncated key is refused by its checksum, without a Redis lookup.
  if (!isWellFormedApiKey(key))
    return new ApiError('invalid_api_key', 'The API key is malformed; check that it was copied whole');
  const record = await apiKeys.authenticate(key);
  if (!record) return new ApiError('invalid_api_key', 'The API key is not valid');
  if (record.revokedAt) return new ApiError('revoked_api_key', `This API key was revoked on ${record.revokedAt}`);
  return record;
}

/**
 * `onRequest` hooks for `/v1` routes: they run once the route is matched and before any
 * byte of the body is read, so a request without a valid key, or without the scope, costs
 * no body parsing and no upload. Order: a known-bad address (no Redis), the key, the key's
 * allowance, the scope. A read-only key's refused writes still use its allowance.
 */
export function makeAuthenticate({ apiKeys, failures, perKey, perKeyTerms }: AuthDeps) {
  /**
   * onSend: an answer of a route with `allowanceInRead` whose read did not count the allowance
   * counts it now. An answer that failed on our side (Redis down) is not charged, and could
   * not be counted anyway. A callback hook: every request runs it, nearly always to `done` at once.
   */
  const countDeferredAllowance: onSendHookHandler = (request, reply, payload, done) => {
    const deferred = request.deferredAllowance;
    if (!deferred || deferred.counted || reply.statusCode >= 500) return done(null, payload);
    deferred.counted = true;
    perKey(request, reply).then(
      () => done(null, payload),
      (error: Error) => done(error),
    );
  };
  const requireScope = (scope: Scope): onRequestAsyncHookHandler => {
    return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      failures.refuseIfBlocked(request);
      const identified = await identify(apiKeys, presentedKey(request));
      if (identified instanceof ApiError) return failures.fail(request, identified);
      request.auth = identified;
      // The request's own logger (already a child per request) gains the caller: no second child.
      (request.log as unknown as Logger).setBindings({ tenant: identified.tenantId, keyId: identified.id });
      // A refused request still uses the allowance.
      if (!identified.scopes.includes(scope)) {
        await perKey(request, reply);
        throw new ApiError('insufficient_scope', `This API key lacks the ${scope} scope`);
      }
      if (request.routeOptions.config.allowanceInRead)
        request.deferredAllowance = { terms: perKeyTerms(request), counted: false };
      else await perKey(request, reply);
    };
  };
  return { requireScope, countDeferredAllowance };
}

export function tenantOf(request: Pick<FastifyRequest, 'auth'>): string {
  if (!request.auth) throw new ApiError('missing_api_key', 'Send your API key in the X-API-KEY header');
  return request.auth.tenantId;
}
