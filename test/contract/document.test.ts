import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { generateApi } from 'swagger-typescript-api';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startImageServer, type ImageServer } from '../helpers/batches.ts';
import type { Json } from '../helpers/jobs.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

/** The main flow as an integrator writes it with the client generated from the document. */
const FLOW = `import { Api, type CreatedBatch } from './api.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function mainFlow(baseUrl: string, apiKey: string, imageUrls: [string, string]) {
  const api = new Api<string>({ baseUrl, securityWorker: (key) => (key ? { headers: { 'X-API-KEY': key } } : {}) });
  api.setSecurityData(apiKey);
  const submitted = await api.jobs.createJob({ image_url: imageUrls[0], metadata: { sku: 'GEN-1' } });
  let job = (await api.jobs.getJob(submitted.data.id)).data;
  for (let i = 0; i < 600 && (job.status === 'queued' || job.status === 'processing'); i++) {
    await sleep(50);
    job = (await api.jobs.getJob(job.id)).data;
  }
  // Without dry_run the answer is the created batch (202); the client types the estimate (200), the first success.
  const created = (await api.batches.createBatch({ items: [{ image_url: imageUrls[1], client_ref: 'GEN-2' }] })).data as unknown as CreatedBatch;
  let batch = (await api.batches.getBatch(created.id)).data;
  for (let i = 0; i < 600 && batch.status === 'processing'; i++) {
    await sleep(50);
    batch = (await api.batches.getBatch(batch.id)).data;
  }
  const manifest = await api.batches.getBatchResults(batch.id, { format: 'jsonl' }, { format: 'text' });
  // The client throws the response of an error status; its error is the documented envelope.
  const refused = await api.jobs.getJob('job_000000000000000000000000').then(
    () => null,
    (response: { status: number; error: { error: { code: string } } }) => ({ status: response.status, code: response.error.error.code }),
  );
  return { job, batch, manifest: String(manifest.data), refused };
}
`;

describe('the OpenAPI document', () => {
  let system: TestSystem;
  let images: ImageServer;
  let document: Json;
  let directory: string;

  beforeAll(async () => {
    system = await startSystem();
    images = await startImageServer(9_000);
    document = (await (await request(`${system.apiUrl}/openapi.json`)).body.json()) as Json;
    directory = mkdtempSync(join(tmpdir(), 'cutout-openapi-'));
    writeFileSync(join(directory, 'openapi.json'), JSON.stringify(document));
  });
  afterAll(async () => {
    rmSync(directory, { recursive: true, force: true });
    await images?.close();
    await system?.close();
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(document.openapi).toBe('3.1.0');
  });

  it("passes Redocly's recommended rules without an error", async () => {
    const lint = await run(
      join(ROOT, 'node_modules/.bin/redocly'),
      ['lint', join(directory, 'openapi.json'), '--config', join(ROOT, 'redocly.yaml'), '--format', 'json'],
      { cwd: ROOT },
    ).catch((error: { stdout: string }) => error);
    const report = JSON.parse(lint.stdout) as {
      totals: { errors: number };
      problems: { severity: string; message: string; ruleId: string }[];
    };
    expect(report.problems.filter((problem) => problem.severity === 'error')).toEqual([]);
    expect(report.totals.errors).toBe(0);
  });

  it('gives every operation a camelCase operationId, declared path parameters, a summary and tags', () => {
    const operations = Object.entries(document.paths as Record<string, Json>).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
    );
    expect(operations.length).toBeGreaterThanOrEqual(30);
    const ids = operations.map(({ operation }) => operation.operationId as string);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, operation } of operations) {
      expect(operation.operationId, path).toMatch(/^[a-z][A-Za-z]+$/);
      expect(operation.summary, path).toBeTruthy();
      expect(operation.tags?.length, path).toBeGreaterThan(0);
      const declared = (operation.parameters ?? [])
        .filter((parameter: Json) => parameter.in === 'path')
        .map((parameter: Json) => parameter.name)
        .sort();
      expect(declared, path).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort());
    }
  });

  it('documents streams and redirects as what they are, and the API key scheme', () => {
    const results = document.paths['/v1/batches/{id}/results'].get.responses['200'].content;
    expect(Object.keys(results).sort()).toEqual(['application/x-ndjson', 'text/csv']);
    expect(document.paths['/v1/jobs/{id}/result'].get.responses['302'].headers).toHaveProperty('location');
    expect(document.paths['/v1/jobs/{id}'].get.responses['304']).not.toHaveProperty('content');
    expect(document.components.securitySchemes.apiKey).toMatchObject({
      type: 'apiKey',
      in: 'header',
      name: 'X-API-KEY',
    });
    expect(document.paths['/v1/jobs'].post.requestBody.content).toHaveProperty('multipart/form-data');
    expect(document.paths['/v1/batches'].post.requestBody.content).toHaveProperty('application/json');
    expect(document.paths['/v1/jobs/{id}'].get.responses['429'].headers).toHaveProperty('retry-after');
  });

  it('describes renditions, quality flags and the job error codes from the schemas the API validates with', () => {
    const { schemas } = document.components;
    expect(schemas.RenditionSpec.properties.preset.enum).toEqual(['marketplace', 'web']);
    expect(schemas.RenditionSpec.properties.format.enum).toEqual(['png', 'webp', 'jpeg']);
    expect(schemas.Quality.properties.flags.items.enum).toEqual([
      'empty_cutout',
      'background_not_removed',
      'subject_cut_off',
      'mostly_semitransparent',
      'tiny_subject',
    ]);
    expect(schemas.Batch.properties.counts.properties).toHaveProperty('quality_flagged');
    const jobErrorCodes = JSON.stringify(schemas.Job.properties.error);
    for (const code of [
      'invalid_image_url',
      'image_url_unreachable',
      'unsupported_media_type',
      'upstream_bad_response',
    ])
      expect(jobErrorCodes).toContain(code);
    expect(JSON.stringify(document.paths['/v1/jobs'].post.responses['422'])).toContain('invalid_renditions');
    expect(document.paths['/v1/batches/{id}/jobs'].get.parameters.map((parameter: Json) => parameter.name)).toContain(
      'quality',
    );
  });

  it('makes a client, generated by a standard generator, that type-checks and runs the main flow against the server', async () => {
    await generateApi({
      input: join(directory, 'openapi.json'),
      output: directory,
      fileName: 'api.ts',
      httpClientType: 'fetch',
      moduleNameFirstTag: true,
      silent: true,
    });
    writeFileSync(join(directory, 'flow.ts'), FLOW);
    writeFileSync(
      join(directory, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'es2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          allowImportingTsExtensions: true,
          lib: ['es2022', 'dom'],
          types: [],
          skipLibCheck: true,
        },
        files: ['flow.ts'],
      }),
    );
    const typecheck = await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(directory, 'tsconfig.json')]).catch(
      (error: { stdout: string }) => error,
    );
    expect(typecheck.stdout).toBe('');
    const { mainFlow } = (await import(join(directory, 'flow.ts'))) as {
      mainFlow: (baseUrl: string, apiKey: string, urls: [string, string]) => Promise<Json>;
    };
    const outcome = await mainFlow(system.apiUrl, system.apiKey, [images.url(1), images.url(2)]);
    expect(outcome.job).toMatchObject({ status: 'succeeded', metadata: { sku: 'GEN-1' } });
    expect(outcome.batch).toMatchObject({ status: 'completed', counts: { total: 1, succeeded: 1 } });
    expect(JSON.parse(outcome.manifest.trim())).toMatchObject({ client_ref: 'GEN-2', status: 'succeeded' });
    expect(outcome.refused).toEqual({ status: 404, code: 'not_found' });
  }, 120_000);
});
