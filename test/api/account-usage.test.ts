import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usageKey } from '@cutout/shared/stores';
import { productImage, PRODUCT_SHOT, undecodablePng } from '../helpers/images.ts';
import { settle, submitPhoto } from '../helpers/jobs.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { callApi, eventually } from '../helpers/webhooks.ts';

const dayBefore = (date: string, days: number) =>
  new Date(Date.parse(`${date}T00:00:00Z`) - days * 86_400_000).toISOString().slice(0, 10);

describe('GET /v1/account/usage', () => {
  let system: TestSystem;
  const today = new Date().toISOString().slice(0, 10);

  beforeAll(async () => {
    system = await startSystem({ faults: { fixedResult: false } });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('shows each day: jobs submitted, succeeded and failed, upstream calls and credits saved', async () => {
    const photo = await productImage('png', PRODUCT_SHOT, 800);
    // Whole PNG chunks around garbage image data: accepted by the API, refused by ByByBG.
    const undecodable = undecodablePng(photo);
    const ids = [
      await submitPhoto(system, photo),
      await submitPhoto(system, await productImage('png', PRODUCT_SHOT, 801)),
      await submitPhoto(system, undecodable),
    ];
    await settle(system, ids);
    await settle(system, [await submitPhoto(system, photo)]); // the same image again: its result is reused
    // Two days ago, as a worker would have counted it then.
    await system.services.redis.hset(
      usageKey(system.config.redis.prefix, 'acme', dayBefore(today, 2)),
      'jobs',
      7,
      'jobs_succeeded',
      6,
      'jobs_failed',
      1,
      'upstream_calls',
      6,
    );

    // Ends are counted as the workers report them, just after the job records change.
    const { status, body } = await eventually(
      async () => {
        const answer = await callApi(system, 'GET', `/v1/account/usage?from=${dayBefore(today, 2)}&to=${today}`);
        return answer.body.totals?.jobs_succeeded + answer.body.totals?.jobs_failed === 11 ? answer : undefined;
      },
      { describe: 'every end counted' },
    );

    expect(status).toBe(200);
    expect(body).toEqual({
      object: 'usage',
      from: dayBefore(today, 2),
      to: today,
      data: [
        { date: dayBefore(today, 2), jobs: 7, jobs_succeeded: 6, jobs_failed: 1, upstream_calls: 6, credits_saved: 0 },
        { date: dayBefore(today, 1), jobs: 0, jobs_succeeded: 0, jobs_failed: 0, upstream_calls: 0, credits_saved: 0 },
        { date: today, jobs: 4, jobs_succeeded: 3, jobs_failed: 1, upstream_calls: 3, credits_saved: 1 },
      ],
      totals: { jobs: 11, jobs_succeeded: 9, jobs_failed: 2, upstream_calls: 9, credits_saved: 1 },
    });
    expect((await callApi(system, 'GET', '/v1/account/usage')).body.data).toHaveLength(30);
  });

  it('answers 400 invalid_request for a reversed range, naming both ends', async () => {
    const { status, body } = await callApi(system, 'GET', `/v1/account/usage?from=${today}&to=${dayBefore(today, 3)}`);
    expect(status).toBe(400);
    expect(body.error).toMatchObject({
      code: 'invalid_request',
      message: `from (${today}) is after to (${dayBefore(today, 3)})`,
    });
  });

  it("shows only the caller's own usage", async () => {
    const { body } = await callApi(system, 'GET', `/v1/account/usage?from=${today}`, { key: system.otherApiKey });
    expect(body.data).toEqual([
      { date: today, jobs: 0, jobs_succeeded: 0, jobs_failed: 0, upstream_calls: 0, credits_saved: 0 },
    ]);
  });
});
