import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FormData, request } from 'undici';
import { productImage } from '../helpers/images.ts';
import { freePort, REPO_ROOT, spawnProcess, stopAllProcesses, deleteKeysWithPrefix } from '../helpers/processes.ts';
import { uniquePrefix } from '../helpers/services.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** What `npm start` runs: API, worker, embedded S3 and the emulator in one process. */
describe('npm start (scripts/start-all.ts)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cutout-start-'));
  const prefix = uniquePrefix();
  afterAll(async () => {
    await stopAllProcesses();
    await deleteKeysWithPrefix(REDIS_URL, prefix);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints its Node version, URL and a working key, serves a job end to end, and stops on SIGTERM', async () => {
    const [port, s3Port, emulatorPort] = [await freePort(), await freePort(), await freePort()];
    const system = spawnProcess({
      name: 'npm-start',
      command: process.execPath,
      args: [join(REPO_ROOT, 'scripts/start-all.ts')],
      env: {
        CUTOUT_DATA_DIR: dataDir,
        PORT: String(port),
        HOST: '127.0.0.1',
        EMBEDDED_S3_PORT: String(s3Port),
        EMULATOR_PORT: String(emulatorPort),
        REDIS_URL,
        REDIS_PREFIX: prefix,
        LOG_LEVEL: 'warn',
      },
    });
    await system.waitForLine('Press Ctrl-C to stop.', 60_000);
    const banner = system.output();
    const url = `http://127.0.0.1:${port}`;
    const key = readFileSync(join(dataDir, 'dev-api-key'), 'utf8').trim();
    expect(banner).toContain(`Cutout is running (Node.js ${process.version})`);
    expect(banner).toContain(`API:      ${url}`);
    expect(banner).toContain(`API key:  ${key}`);
    expect(banner).toContain('WARNING: no BYBYBG_API_KEY is set');

    const form = new FormData();
    form.append('file', new Blob([await productImage('png')], { type: 'image/png' }), 'shoe.png');
    const submitted = await request(`${url}/v1/jobs`, { method: 'POST', body: form, headers: { 'x-api-key': key } });
    const job = (await submitted.body.json()) as { id: string };
    expect(submitted.statusCode).toBe(202);
    const done = await request(`${url}/v1/jobs/${job.id}`, { headers: { 'x-api-key': key, prefer: 'wait=30' } });
    const view = (await done.body.json()) as { status: string; result: { url: string } | null };
    expect(view.status).toBe('succeeded');
    const result = await request(view.result!.url);
    expect([result.statusCode, result.headers['content-type']]).toEqual([200, 'image/png']);
    await result.body.dump();

    system.kill('SIGTERM');
    expect(await system.waitForExit(30_000)).toEqual({ code: 0, signal: null });
  });
});
