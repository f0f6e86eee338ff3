import type { FastifyRequest } from 'fastify';
import type { ApiKeyRecord, Scope, TenantStore } from '@cutout/shared';
import { ApiError } from './errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    auth?: ApiKeyRecord;
  }
}

/** Resolves `X-API-KEY` to a tenant and checks the route's scope; throws 401/403. */
export function makeAuthenticate(tenants: TenantStore) {
  return function requireScope(scope: Scope) {
    return async (request: FastifyRequest): Promise<void> => {
      const header = request.headers['x-api-key'];
      const key = Array.isArray(header) ? header[0] : header;
      if (!key) throw new ApiError(401, 'missing_api_key', 'Send your API key in the X-API-KEY header');
      const record = await tenants.authenticate(key);
      if (!record) throw new ApiError(401, 'invalid_api_key', 'The API key is not valid');
      if (!record.scopes.includes(scope)) throw new ApiError(403, 'insufficient_scope', `This API key lacks the ${scope} scope`);
      request.auth = record;
      request.log = request.log.child({ tenant: record.tenantId });
    };
  };
}

export function tenantOf(request: FastifyRequest): string {
  if (!request.auth) throw new ApiError(401, 'missing_api_key', 'Send your API key in the X-API-KEY header');
  return request.auth.tenantId;
}
