import type { FastifyRequest } from 'fastify';
import { isWellFormedApiKey, looksLikeReviewToken, type ApiKeyStore, type Scope, type StoredApiKey } from '@cutout/shared';
import { ApiError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    auth?: StoredApiKey;
  }
}

/** Resolves `X-API-KEY` to a tenant and checks the route's scope; throws 401/403. The key is never logged. */
export function makeAuthenticate(apiKeys: ApiKeyStore) {
  return function requireScope(scope: Scope) {
    return async (request: FastifyRequest): Promise<void> => {
      const header = request.headers['x-api-key'];
      const key = Array.isArray(header) ? header[0] : header;
      if (!key) throw new ApiError(401, 'missing_api_key', 'Send your API key in the X-API-KEY header');
      if (looksLikeReviewToken(key)) throw new ApiError(401, 'review_link_not_api_key', 'A review link opens the review page only; the API takes an API key');
      // A typo or a truncated key is refused by its checksum, without a Redis lookup.
      if (!isWellFormedApiKey(key)) throw new ApiError(401, 'invalid_api_key', 'The API key is malformed; check that it was copied whole');
      const record = await apiKeys.authenticate(key);
      if (!record) throw new ApiError(401, 'invalid_api_key', 'The API key is not valid');
      if (record.revokedAt) throw new ApiError(401, 'revoked_api_key', `This API key was revoked on ${record.revokedAt}`);
      if (!record.scopes.includes(scope)) throw new ApiError(403, 'insufficient_scope', `This API key lacks the ${scope} scope`);
      request.auth = record;
      request.log = request.log.child({ tenant: record.tenantId, keyId: record.id });
    };
  };
}

export function tenantOf(request: FastifyRequest): string {
  if (!request.auth) throw new ApiError(401, 'missing_api_key', 'Send your API key in the X-API-KEY header');
  return request.auth.tenantId;
}
