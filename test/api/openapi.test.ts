import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startSystem, type TestSystem } from '../helpers/system.ts';

describe('the OpenAPI document', () => {
  let system: TestSystem;
  let document: Record<string, any>;

  beforeAll(async () => {
    system = await startSystem({ workers: 0 });
    const response = await request(`${system.apiUrl}/openapi.json`);
    expect(response.statusCode).toBe(200);
    document = (await response.body.json()) as Record<string, any>;
  });
  afterAll(async () => {
    await system?.close();
  });

  it('is a valid OpenAPI 3 document', async () => {
    const result = await new Validator().validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents every /v1 route with its error codes', () => {
    const operations = Object.entries(document.paths as Record<string, Record<string, any>>)
      .flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, op })));
    const keys = operations.map((operation) => operation.key);
    for (const key of ['POST /v1/jobs', 'GET /v1/jobs', 'GET /v1/jobs/{id}', 'DELETE /v1/jobs/{id}', 'GET /v1/jobs/{id}/result', 'GET /v1/account']) {
      expect(keys).toContain(key);
    }
    const submit = operations.find((operation) => operation.key === 'POST /v1/jobs')!.op;
    for (const code of ['missing_file', 'unsupported_media_type', 'file_too_large', 'image_too_large', 'idempotency_key_reused', 'invalid_webhook_url']) {
      expect(JSON.stringify(submit.responses)).toContain(code);
    }
  });

  it('describes renditions and quality flags from the schema the API validates with', () => {
    const { schemas } = document.components;
    expect(schemas.RenditionSpec.properties.preset.enum).toEqual(['marketplace', 'web']);
    expect(schemas.RenditionSpec.properties.format.enum).toEqual(['png', 'webp', 'jpeg']);
    expect(schemas.RenditionSpec.required).toEqual(['name']);
    expect(schemas.Job.properties.quality.properties.flags.items.enum).toEqual(['empty_cutout', 'background_not_removed', 'subject_cut_off', 'mostly_semitransparent', 'tiny_subject']);
    expect(schemas.Job.properties.renditions.additionalProperties.properties).toHaveProperty('upscaled');
    expect(schemas.Batch.properties.counts.properties).toHaveProperty('quality_flagged');
    const rendition = document.paths['/v1/jobs/{id}/renditions/{name}'].get;
    expect(Object.keys(rendition.responses)).toEqual(expect.arrayContaining(['302', '404', '409']));
    expect(JSON.stringify(document.paths['/v1/jobs'].post.responses)).toContain('invalid_renditions');
    expect(document.paths['/v1/batches/{id}/jobs'].get.parameters.map((parameter: { name: string }) => parameter.name)).toContain('quality');
  });

  it('serves the interactive docs at /docs', async () => {
    const response = await request(`${system.apiUrl}/docs/`, { maxRedirections: 0 } as never);
    expect([200, 302]).toContain(response.statusCode);
    await response.body.dump();
  });
});
