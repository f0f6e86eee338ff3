import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { buildRows, formOf, MAX_UPLOAD_BYTES, type Row } from '../helpers/bad-input-rows.ts';
import { countJobs } from '../helpers/jobs.ts';

describe('hostile and malformed input to POST /v1/jobs', () => {
  let system: TestSystem;
  let rows: Row[];

  beforeAll(async () => {
    system = await startSystem({
      workers: 0,
      env: { MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES), MAX_IMAGE_PIXELS: '40000000' },
    });
    rows = await buildRows();
  });
  afterAll(async () => {
    await system?.close();
  });

  it('answers each bad request with its documented status and code, keeps nothing of them, accepts the odd good ones, and keeps serving', async () => {
    expect(rows.length).toBeGreaterThanOrEqual(40);
    const accepted = rows.filter((row) => row.status === 202).length;
    const mismatches: string[] = [];
    for (const row of rows) {
      const headers: Record<string, string> = { ...row.headers };
      if (row.key !== null) headers['x-api-key'] = row.key ?? system.apiKey;
      if (row.contentType) headers['content-type'] = row.contentType;
      const response = await request(`${system.apiUrl}/v1/jobs`, {
        method: 'POST',
        headers,
        body: row.body ?? formOf(row.parts ?? []),
      });
      const text = await response.body.text();
      let code = '';
      try {
        code = JSON.parse(text).error?.code ?? '';
      } catch {
        code = `(not JSON: ${text.slice(0, 40)})`;
      }
      if (response.statusCode !== row.status || code !== row.code)
        mismatches.push(`${row.name}: ${response.statusCode} ${code}, expected ${row.status} ${row.code}`);
    }
    expect(mismatches).toEqual([]);

    const listed = await system.services.s3.send(
      new ListObjectsV2Command({ Bucket: system.config.s3.bucket, Prefix: 'originals/' }),
    );
    expect(listed.KeyCount ?? 0).toBe(accepted);
    expect(await countJobs(system)).toBe(accepted);
    expect(await system.services.queues.removeBg.count()).toBe(accepted);
    const health = await request(`${system.apiUrl}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
  });

  it('accepts naughty file names and metadata strings, storing under generated keys only', async () => {
    const naughty = [
      '../../etc/passwd',
      '..\\..\\windows\\win.ini',
      'photo.png\u0000.exe',
      '%2e%2e%2f',
      '<script>alert(1)</script>.png',
      '𝕳𝖊𝖑𝖑𝖔.png',
      ' ',
      'CON',
    ];
    for (const [i, name] of naughty.entries()) {
      const form = formOf([
        { name: 'file', file: await productImage('png', PRODUCT_SHOT, 950 + i), filename: name, type: 'image/png' },
        { name: 'metadata', value: JSON.stringify({ name, sql: "'; DROP TABLE jobs; --" }) },
      ]);
      const response = await request(`${system.apiUrl}/v1/jobs`, {
        method: 'POST',
        body: form,
        headers: { 'x-api-key': system.apiKey },
      });
      const body = (await response.body.json()) as { id: string; metadata: { name: string } };
      expect(response.statusCode).toBe(202);
      expect(body.metadata.name).toBe(name);
      const record = await system.services.jobs.get(body.id);
      expect(record!.originalKey).toBe(`originals/${system.tenantId}/${body.id}`);
    }
  });
});
