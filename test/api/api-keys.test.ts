import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import type { Scope } from '@cutout/shared/stores';
import { generateApiKey, makeApiKeyStore, type ApiKeyStore } from '../../apps/api/src/auth/api-keys.ts';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { countJobs } from '../helpers/jobs.ts';

type Json = Record<string, any>;

describe('API keys through the API', () => {
  let system: TestSystem;
  let keys: ApiKeyStore;
  let photoVariant = 0;

  beforeAll(async () => {
    system = await startSystem({ workers: 0 });
    keys = makeApiKeyStore({ redis: system.services.redis, prefix: system.config.redis.prefix });
  });
  afterAll(async () => {
    await system?.close();
  });

  const newKey = async (scopes?: Scope[]) => (await keys.create({ tenantId: system.tenantId, scopes })).key;

  async function call(method: 'GET' | 'POST', path: string, key: string, body?: FormData) {
    const response = await request(`${system.apiUrl}${path}`, { method, body, headers: { 'x-api-key': key } });
    return { status: response.statusCode, body: (await response.body.json()) as Json };
  }

  async function submit(key: string) {
    const form = new FormData();
    photoVariant += 1;
    const photo = await productImage('png', PRODUCT_SHOT, photoVariant);
    form.append('file', new Blob([photo], { type: 'image/png' }), 'photo.png');
    return call('POST', '/v1/jobs', key, form);
  }

  const jobCount = () => countJobs(system);

  it('lets a read-only key read but answers 403 insufficient_scope when it submits', async () => {
    const readOnly = await newKey(['jobs:read']);
    const before = await jobCount();

    const submitted = await submit(readOnly);
    const account = await call('GET', '/v1/account', readOnly);

    expect(submitted.status).toBe(403);
    expect(submitted.body.error).toMatchObject({
      code: 'insufficient_scope',
      request_id: expect.stringMatching(/^req_/),
    });
    expect(await jobCount()).toBe(before);
    expect(account.status).toBe(200);
    expect(account.body).toMatchObject({ tenant_id: system.tenantId, scopes: ['jobs:read'] });
  });

  it('answers 401 revoked_api_key, with the date, once a key is revoked', async () => {
    const key = await newKey();
    expect((await call('GET', '/v1/account', key)).status).toBe(200);

    const revoked = await keys.revoke(key);
    const answer = await call('GET', '/v1/account', key);

    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('revoked_api_key');
    expect(answer.body.error.message).toContain(revoked!.revokedAt);
  });

  it('answers 401 invalid_api_key for a key with a bad checksum', async () => {
    const key = await newKey();
    const typo = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;

    const answer = await call('GET', '/v1/account', typo);

    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('invalid_api_key');
  });

  it('answers 401 invalid_api_key for a well-formed key that was never issued', async () => {
    const answer = await call('GET', '/v1/account', generateApiKey());

    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('invalid_api_key');
  });

  it('shows a job submitted with one key to another key of the same tenant', async () => {
    const first = await newKey();
    const second = await newKey(['jobs:read']);

    const submitted = await submit(first);
    expect(submitted.status).toBe(202);
    const seen = await call('GET', `/v1/jobs/${submitted.body.id}`, second);
    const seenByBootstrapKey = await call('GET', `/v1/jobs/${submitted.body.id}`, system.apiKey);

    expect(seen.status).toBe(200);
    expect(seen.body.id).toBe(submitted.body.id);
    expect(seenByBootstrapKey.status).toBe(200);
  });

  it("keeps another tenant's job hidden (404) from a created key", async () => {
    const submitted = await submit(system.otherApiKey);
    expect(submitted.status).toBe(202);

    const answer = await call('GET', `/v1/jobs/${submitted.body.id}`, await newKey());

    expect(answer.status).toBe(404);
  });
});
