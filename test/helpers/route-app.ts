import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import multipart from '@fastify/multipart';
import { createLogger, loadConfig, type Config } from '@cutout/shared/infra';
import { generateApiKey, type StoredApiKey } from '../../apps/api/src/auth/api-keys.ts';
import { makeAuthenticate } from '../../apps/api/src/auth/authenticate.ts';
import { contractSettingsOf } from '../../apps/api/src/app.ts';
import { registerContract, type ContractViolation } from '../../apps/api/src/contract/register.ts';
import type { AppDeps, RouteOptions } from '../../apps/api/src/deps.ts';
import { registerErrorHandling } from '../../apps/api/src/http/errors.ts';

/** Keys the route app knows: a read-write key of acme, a read-only one, one of globex and a revoked one. */
interface RouteKeys {
  acme: string;
  readOnly: string;
  globex: string;
  revoked: string;
}

export interface RouteApp {
  app: FastifyInstance;
  keys: RouteKeys;
  config: Config;
  /** Answers that did not match the OpenAPI document. */
  violations: ContractViolation[];
}

const record = (tenantId: string, scopes: StoredApiKey['scopes'], extra: Partial<StoredApiKey> = {}): StoredApiKey => ({
  id: `key_${tenantId.padEnd(16, 'x').slice(0, 16)}`,
  tenantId,
  scopes,
  createdAt: '2026-01-01T00:00:00.000Z',
  prefix: 'ck_live_',
  ...extra,
});

/** A service the test did not provide: any use of it throws (a 500 the test sees). */
const missingService = (service: string): unknown =>
  new Proxy(() => undefined, {
    get: (_target, name) => {
      if (name === 'then') return undefined;
      return () => {
        throw new Error(`the route used deps.${service}.${String(name)}, which this test did not provide`);
      };
    },
    apply: () => {
      throw new Error(`the route called deps.${service}, which this test did not provide`);
    },
  });

/**
 * One route plugin on a fastify app of its own, driven with `inject()`: the real contract
 * (validation, serialization, error envelope) and the real authentication over keys held in
 * memory; every other service is what the test passes in `deps`, so a route test needs no
 * Redis, S3 or socket. A service the test did not pass fails loudly when a route touches it.
 */
export async function routeApp(
  plugin: FastifyPluginAsync<RouteOptions>,
  deps: Partial<AppDeps> = {},
  env: Record<string, string> = {},
): Promise<RouteApp> {
  const config = loadConfig({ API_KEYS: 'acme:route-test-key-not-used-here-0000', ...env });
  const keys: RouteKeys = {
    acme: generateApiKey(),
    readOnly: generateApiKey(),
    globex: generateApiKey(),
    revoked: generateApiKey(),
  };
  const records = new Map<string, StoredApiKey>([
    [keys.acme, record('acme', ['jobs:read', 'jobs:write'])],
    [keys.readOnly, record('acme', ['jobs:read'])],
    [keys.globex, record('globex', ['jobs:read', 'jobs:write'])],
    [keys.revoked, record('acme', ['jobs:read', 'jobs:write'], { revokedAt: '2026-02-01T00:00:00.000Z' })],
  ]);
  const { requireScope } = makeAuthenticate({
    apiKeys: { authenticate: async (key) => records.get(key) ?? null },
    failures: { refuseIfBlocked: () => undefined, fail: async (_request, error) => Promise.reject(error) },
    perKey: async () => undefined,
    perKeyTerms: () => ({ key: 'route-test', max: 1_000_000, windowMs: 60_000 }),
  });
  const violations: ContractViolation[] = [];
  const report = (violation: ContractViolation) => void violations.push(violation);
  const log = createLogger({ level: 'silent', name: 'route-test' });
  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, genReqId: () => 'req_route_test' });
  registerErrorHandling(app, report);
  await registerContract(app, { publicBaseUrl: config.api.publicBaseUrl, version: 'test', report });
  await app.register(multipart, { limits: { fileSize: config.api.maxUploadBytes, files: 1, fields: 10, parts: 12 } });
  const allDeps = new Proxy({ config, log, ...deps } as AppDeps, {
    get: (target, name) => (name in target ? target[name as keyof AppDeps] : missingService(String(name))),
  });
  await app.register(plugin, {
    deps: allDeps,
    guards: { 'jobs:read': requireScope('jobs:read'), 'jobs:write': requireScope('jobs:write') },
    contract: contractSettingsOf(config),
  });
  await app.ready();
  return { app, keys, config, violations };
}
