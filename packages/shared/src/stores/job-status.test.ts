import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBudgets } from './budgets.ts';
import { makeJobStatusReader, type JobStatusReader } from './job-status.ts';
import { makeJobStore, type JobRecord, type JobStore } from './job-store.ts';
import { createRedis, type Redis } from '../infra/redis.ts';
import { runScript } from '../infra/scripts.ts';
import { makeUpstreamState } from './upstream-state.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
let redis: Redis;
let jobs: JobStore;
let reader: JobStatusReader;

const job = (id: string, extra: Partial<JobRecord> = {}): JobRecord => ({
  id,
  tenantId: 'acme',
  status: 'queued',
  createdAt: new Date().toISOString(),
  attempts: 0,
  upstreamCalls: 0,
  originalKey: `originals/acme/${id}`,
  originalBytes: 10,
  originalContentType: 'image/png',
  ...extra,
});

beforeAll(async () => {
  redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await redis.connect();
  jobs = makeJobStore({ redis, prefix, retentionMs: 60_000 });
  reader = makeJobStatusReader({ redis, prefix });
});
afterAll(async () => {
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

describe('job status reader', () => {
  it('reads the record as the job store does, and no hold when nothing holds the queue', async () => {
    await jobs.create(job('job_plain', { metadata: { sku: 'A-1' } }));
    const read = await reader.read('job_plain', 'acme');
    expect(read).toEqual({ record: await jobs.get('job_plain'), hold: null });
    expect(await reader.read('job_missing', 'acme')).toEqual({ record: null, hold: null });
  });

  it('names the hold of a queued job in the same order as the separate reads: account holds, then budget, then 429 pause', async () => {
    const tenant = `t${randomBytes(4).toString('hex')}`;
    const upstream = makeUpstreamState({ redis, prefix });
    const budgets = makeBudgets({ redis, prefix });
    await jobs.create(job('job_held', { tenantId: tenant }));
    await upstream.notePause(30_000);
    expect((await reader.read('job_held', tenant)).hold).toBe('upstream_rate_limited');
    await budgets.setLimits(tenant, { daily: 1 });
    expect((await reader.read('job_held', tenant)).hold).toBe('upstream_rate_limited');
    await budgets.reserve(tenant);
    expect((await reader.read('job_held', tenant)).hold).toBe('budget_exhausted');
    await upstream.setHold('upstream_out_of_credit', { since: new Date().toISOString(), message: 'no credit' });
    expect((await reader.read('job_held', tenant)).hold).toBe('upstream_out_of_credit');
    // Only a queued job waits for its queue.
    await jobs.transition('job_held', ['queued'], { status: 'processing' });
    expect(await reader.read('job_held', tenant)).toMatchObject({ record: { status: 'processing' }, hold: null });
    await upstream.clearHold('upstream_out_of_credit');
    await redis.del(`${prefix}:upstream:rate-limit-pause`);
  });
});

describe('runScript', () => {
  it('loads a script Redis does not know (NOSCRIPT) and runs it by digest afterwards', async () => {
    const lua = `return {KEYS[1], ARGV[1], '${randomBytes(8).toString('hex')}'}`;
    const key = `${prefix}:script`; // a script of its own (random text): Redis has never seen its digest
    const first = (await runScript(redis, lua, 1, key, 'a')) as string[];
    const second = (await runScript(redis, lua, 1, key, 'b')) as string[];
    expect([first.slice(0, 2), second.slice(0, 2)]).toEqual([
      [key, 'a'],
      [key, 'b'],
    ]);
    expect(
      await redis.script('EXISTS', (await import('node:crypto')).createHash('sha1').update(lua).digest('hex')),
    ).toEqual([1]);
  });
});
