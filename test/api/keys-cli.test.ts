import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, sha256Hex, type Redis } from '@cutout/shared/infra';
import { makeBudgets } from '@cutout/shared/stores';
import { makeApiKeyStore, type ApiKeyStore } from '../../apps/api/src/auth/api-keys.ts';
import { testRedis, uniquePrefix, type TestRedis } from '../helpers/services.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('npm run keys', () => {
  let server: TestRedis;
  let redis: Redis;
  let store: ApiKeyStore;
  const prefix = uniquePrefix();

  beforeAll(async () => {
    server = await testRedis();
    redis = createRedis(server.url);
    await redis.connect();
    store = makeApiKeyStore({ redis, prefix });
  });
  afterAll(async () => {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      if (found.length > 0) await redis.unlink(...found);
      cursor = next;
    } while (cursor !== '0');
    await redis.quit();
    await server.close();
  });

  /** The CLI as an operator runs it, with only the variables it needs. */
  function keys(...args: string[]): Promise<Run> {
    const env = { PATH: process.env.PATH, REDIS_URL: server.url, REDIS_PREFIX: prefix };
    return new Promise((resolve) => {
      execFile(process.execPath, ['apps/api/src/keys-cli.ts', ...args], { cwd: ROOT, env }, (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  const keyIn = (stdout: string) => /^key:\s+(\S+)$/m.exec(stdout)?.[1] ?? '';

  it('creates a key that authenticates, printing it and its id once', async () => {
    const run = await keys('create', '--tenant', 'acme', '--name', 'ci');

    expect(run.code).toBe(0);
    const key = keyIn(run.stdout);
    const id = /^id:\s+(key_\S+)$/m.exec(run.stdout)?.[1];
    expect(key).toMatch(/^ck_live_/);
    expect(await store.authenticate(key)).toMatchObject({
      id,
      tenantId: 'acme',
      scopes: ['jobs:read', 'jobs:write'],
      name: 'ci',
    });
    expect(run.stderr).toMatch(/not shown again/);
  });

  it('creates a read-only key with --scope, and prints JSON with --json', async () => {
    const run = await keys('create', '--tenant', 'acme', '--scope', 'jobs:read', '--json');

    expect(run.code).toBe(0);
    const created = JSON.parse(run.stdout) as { id: string; key: string; scopes: string[] };
    expect(created.scopes).toEqual(['jobs:read']);
    expect((await store.authenticate(created.key))?.scopes).toEqual(['jobs:read']);
  });

  it('lists keys with id, tenant and prefix, never the key or its hash', async () => {
    const created = await keys('create', '--tenant', 'listed');
    const key = keyIn(created.stdout);

    const table = await keys('list', '--tenant', 'listed');
    const all = await keys('list', '--json');

    expect(table.code).toBe(0);
    const record = (await store.authenticate(key))!;
    expect(table.stdout).toContain(record.id);
    expect(table.stdout).toContain(key.slice(0, 12));
    expect(table.stdout).toContain('listed');
    for (const output of [table.stdout, all.stdout]) {
      expect(output).not.toContain(key);
      expect(output).not.toContain(sha256Hex(key));
    }
    expect((JSON.parse(all.stdout) as { id: string }[]).map((listed) => listed.id)).toContain(record.id);
  });

  it('revokes a key by id, so authenticate says it is revoked', async () => {
    const key = keyIn((await keys('create', '--tenant', 'acme')).stdout);
    const { id } = (await store.authenticate(key))!;

    const run = await keys('revoke', id);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain(id);
    expect((await store.authenticate(key))?.revokedAt).toEqual(expect.any(String));
  });

  it('exits 1 when revoking an id that does not exist', async () => {
    const run = await keys('revoke', 'key_0000000000000000');

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('No API key key_0000000000000000');
  });

  it('sets a daily budget, adds a monthly one, shows both with what is used, and clears them', async () => {
    const budgets = makeBudgets({ redis, prefix });
    await budgets.reserve('budgeted');

    const set = await keys('budget', '--tenant', 'budgeted', '--daily-upstream-calls', '5000');
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^daily: +5000 upstream calls \(1 used; resets \d{4}-\d\d-\d\dT00:00:00\.000Z\)$/m);
    expect(set.stdout).toMatch(/^monthly: +none$/m);

    await keys('budget', '--tenant', 'budgeted', '--monthly-upstream-calls', '100000');
    const shown = await keys('budget', '--tenant', 'budgeted', '--json');
    expect(JSON.parse(shown.stdout)).toEqual({
      tenant_id: 'budgeted',
      daily: { limit: 5000, used: 1, resets_at: expect.any(String) },
      monthly: { limit: 100000, used: 1, resets_at: expect.stringMatching(/-01T00:00:00\.000Z$/) },
    });
    expect(await budgets.limits('budgeted')).toEqual({ daily: 5000, monthly: 100000 });

    const cleared = await keys('budget', '--tenant', 'budgeted', '--clear', '--json');
    expect(JSON.parse(cleared.stdout)).toEqual({ tenant_id: 'budgeted', daily: null, monthly: null });
    expect(await budgets.limits('budgeted')).toEqual({ daily: null, monthly: null });
  });

  it.each([
    ['budget without --tenant', ['budget']],
    ['a budget that is not a whole number', ['budget', '--tenant', 'acme', '--daily-upstream-calls', '1e3']],
    ['a negative budget', ['budget', '--tenant', 'acme', '--monthly-upstream-calls', '-5']],
    ['--clear with a number', ['budget', '--tenant', 'acme', '--clear', '--daily-upstream-calls', '5']],
    ['a budget option on create', ['create', '--tenant', 'acme', '--daily-upstream-calls', '5']],
    ['no command', []],
    ['an unknown command', ['rotate']],
    ['create without --tenant', ['create']],
    ['a tenant id with a space', ['create', '--tenant', 'a b']],
    ['an unknown scope', ['create', '--tenant', 'acme', '--scope', 'admin']],
    ['an unknown option', ['list', '--all']],
    ['revoke without an id', ['revoke']],
    ['revoke with something that is not an id', ['revoke', 'abc']],
  ])('exits 2 with the usage for %s', async (_, args) => {
    const run = await keys(...args);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Usage:');
    expect(run.stdout).toBe('');
  });
});
