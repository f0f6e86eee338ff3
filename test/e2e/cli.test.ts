import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { emulatorStats, type Json } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { callApi, eventually } from '../helpers/webhooks.ts';
import { startImageServer } from '../helpers/batches.ts';

// The entry point itself, not the bin shim: SIGKILL must hit the process doing the work.
const CLI = join(import.meta.dirname, '../../apps/cli/src/main.ts');

function runCli(
  system: TestSystem,
  args: string[],
): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, CUTOUT_URL: system.apiUrl, CUTOUT_API_KEY: system.apiKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

/** Objects left under uploads/ (direct uploads whose files were not made originals yet). */
async function uploadedObjects(system: TestSystem): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of system.services.storage.list('uploads/')) keys.push(key);
  return keys;
}

const results = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.png')) : []);

/** Every job of the tenant, through the list's cursor. */
async function allJobs(system: TestSystem): Promise<Json[]> {
  const jobs: Json[] = [];
  let cursor: string | null = null;
  do {
    const { body } = await callApi(system, 'GET', `/v1/jobs?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    jobs.push(...body.data);
    cursor = body.next_cursor;
  } while (cursor);
  return jobs;
}

describe('the cutout CLI', () => {
  let system: TestSystem;
  let work: string;

  beforeAll(async () => {
    system = await startSystem({ env: { WORKER_CONCURRENCY: '2' }, faults: { latencyMs: 50, fixedResult: true } });
    work = mkdtempSync(join(tmpdir(), 'cutout-cli-'));
  });
  afterAll(async () => {
    await system?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('uploads a folder of 50 images, resumes after being killed halfway and never resubmits an item', async () => {
    const input = join(work, 'photos');
    const out = join(work, 'out');
    mkdirSync(input);
    for (let i = 0; i < 50; i++)
      writeFileSync(
        join(input, `shoe-${String(i).padStart(2, '0')}.png`),
        await productImage('png', PRODUCT_SHOT, 60_000 + i),
      );

    const first = runCli(system, ['batch', input, '--out', out, '--chunk', '20']);
    await eventually(async () => (results(out).length >= 10 ? true : undefined), {
      timeoutMs: 60_000,
      describe: 'ten results saved',
    });
    first.child.kill('SIGKILL');
    await first.done;
    expect(results(out).length).toBeLessThan(50);

    const second = runCli(system, ['batch', input, '--out', out, '--chunk', '20', '--json']);
    const { code, stdout, stderr } = await second.done;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as Json;
    expect(summary).toMatchObject({ total: 50, succeeded: 50, failed: 0 });
    expect(results(out).sort()).toEqual(Array.from({ length: 50 }, (_, i) => `shoe-${String(i).padStart(2, '0')}.png`));

    // One job per image on the server, and one ByByBG call each: nothing was submitted twice.
    const jobs = await allJobs(system);
    expect(jobs).toHaveLength(50);
    expect((await emulatorStats(system)).total).toBe(50);
    // The files went straight to S3 (direct uploads), not through the API, and none is left there.
    expect((await system.services.jobs.get(jobs[0]!.id))!.uploadKey).toMatch(/^uploads\/acme\/upl_/);
    expect(await uploadedObjects(system)).toEqual([]);
  }, 90_000);

  it('finishes an upload it was interrupted in: sends only the files not in S3 yet, then makes the batch', async () => {
    const input = join(work, 'half-sent');
    const out = join(work, 'half-out');
    mkdirSync(input);
    mkdirSync(out);
    const names = Array.from({ length: 6 }, (_, i) => `bag-${i}.png`);
    const photos = await Promise.all(names.map((_, i) => productImage('png', PRODUCT_SHOT, 62_000 + i)));
    for (const [i, name] of names.entries()) writeFileSync(join(input, name), photos[i]!);
    // What a run killed half-way through its uploads leaves: the upload in its state, three files sent.
    const { body: upload } = await callApi(system, 'POST', '/v1/uploads', {
      body: { files: names.map((name, i) => ({ name, content_type: 'image/png', bytes: photos[i]!.length })) },
    });
    for (const [i, file] of (upload.files as Json[]).slice(0, 3).entries())
      await (await request(file.put_url, { method: 'PUT', body: photos[i], headers: file.headers })).body.dump();
    writeFileSync(
      join(out, '.cutout-state.json'),
      JSON.stringify({
        version: 1,
        input,
        batches: [],
        ended: {},
        uploads: [{ id: upload.id, refs: names, expiresAt: upload.expires_at }],
      }),
    );
    // Were the three sent again, they would now be of another size than declared, and rejected.
    for (const name of names.slice(0, 3))
      writeFileSync(join(input, name), Buffer.concat([photos[0]!, Buffer.alloc(64)]));
    const before = (await emulatorStats(system)).total;

    const { code, stdout } = await runCli(system, ['batch', input, '--out', out, '--json']).done;
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as Json;
    expect(summary).toMatchObject({ total: 6, succeeded: 6 });
    expect(summary.batches).toHaveLength(1);
    expect((await callApi(system, 'GET', `/v1/batches/${summary.batches[0]}`)).body.counts).toMatchObject({
      total: 6,
      rejected: 0,
    });
    expect((await callApi(system, 'GET', `/v1/uploads/${upload.id}`)).body.status).toBe('used');
    expect((await emulatorStats(system)).total - before).toBe(6);
  }, 60_000);

  it('sends a folder through the API with --multipart', async () => {
    const input = join(work, 'multipart');
    const out = join(work, 'multipart-out');
    mkdirSync(input);
    for (let i = 0; i < 3; i++)
      writeFileSync(join(input, `hat-${i}.png`), await productImage('png', PRODUCT_SHOT, 63_000 + i));
    const { code, stdout } = await runCli(system, ['batch', input, '--out', out, '--multipart', '--json']).done;
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as Json;
    expect(summary).toMatchObject({ total: 3, succeeded: 3 });
    const [jobId] = await system.services.batches.itemIds(summary.batches[0], 0, 1);
    expect((await system.services.jobs.get(jobId!))!.uploadKey).toBeUndefined();
  }, 60_000);

  it('submits a CSV manifest, saves results by client_ref and lists failed rows with reasons', async () => {
    const images = await startImageServer(61_000);
    try {
      const csv = join(work, 'manifest.csv');
      writeFileSync(
        csv,
        ['image_url,client_ref', `${images.url(1)},SKU-1`, `${images.url(2)},SKU-2`, 'ftp://nope/x.png,SKU-3'].join(
          '\n',
        ),
      );
      const out = join(work, 'csv-out');
      const { code, stdout } = await runCli(system, ['batch', csv, '--out', out]).done;
      expect(code).toBe(1);
      expect(results(out).sort()).toEqual(['SKU-1.png', 'SKU-2.png']);
      expect(stdout).toContain('2 of 3 succeeded, 1 failed');
      expect(stdout).toMatch(/row 4: rejected: invalid_image_url/);
    } finally {
      await images.close();
    }
  }, 60_000);

  it('shows a batch with status --json', async () => {
    const state = JSON.parse(readFileSync(join(work, 'out', '.cutout-state.json'), 'utf8')) as Json;
    const { code, stdout } = await runCli(system, ['status', state.batches[0].id, '--json']).done;
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ id: state.batches[0].id, object: 'batch', status: 'completed' });
  });

  it('prints a review link for a batch, which opens the review page', async () => {
    const state = JSON.parse(readFileSync(join(work, 'out', '.cutout-state.json'), 'utf8')) as Json;
    const { code, stdout } = await runCli(system, ['review', state.batches[0].id, '--expires', '600']).done;
    expect(code).toBe(0);
    const url = stdout.split('\n')[0]!;
    expect(url).toMatch(/\/review\/rvw_b\w+\.\w+\.\w+\.[\w-]+$/);
    const page = await fetch(`${system.apiUrl}${new URL(url).pathname}/data`);
    expect(((await page.json()) as Json).batch.id).toBe(state.batches[0].id);
    const refused = await runCli(system, ['review', state.batches[0].id, '--expires', '5']).done;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('expires_in');
  });

  it('asks before it spends: without a terminal, a run over --confirm-over submits nothing and exits 2', async () => {
    const input = join(work, 'costly');
    mkdirSync(input);
    for (let i = 0; i < 4; i++)
      writeFileSync(join(input, `bag-${i}.png`), await productImage('png', PRODUCT_SHOT, 64_000 + i));
    const jobsBefore = (await allJobs(system)).length;
    const callsBefore = (await emulatorStats(system)).total;

    const refused = await runCli(system, ['batch', input, '--out', join(work, 'costly-out'), '--confirm-over', '3'])
      .done;
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      'This run would make 4 upstream calls for 4 images (0 reuse earlier results): more than --confirm-over 3',
    );
    expect(refused.stderr).toContain('Nothing was submitted');
    expect((await allJobs(system)).length).toBe(jobsBefore);
    expect((await emulatorStats(system)).total).toBe(callsBefore);

    const allowed = await runCli(system, [
      'batch',
      input,
      '--out',
      join(work, 'costly-out'),
      '--confirm-over',
      '4',
      '--json',
    ]).done;
    expect(allowed.code).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ total: 4, succeeded: 4 });
    expect((await emulatorStats(system)).total - callsBefore).toBe(4);
  }, 60_000);
});
