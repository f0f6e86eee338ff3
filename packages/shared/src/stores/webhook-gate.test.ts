import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type Redis } from '../infra/redis.ts';
import { endpointIdOf, makeEndpointGate, type Admission, type GateSettings } from './webhook-gate.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
let redis: Redis;
let endpoints = 0;

beforeAll(async () => {
  redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await redis.connect();
});
afterAll(async () => {
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

const SETTINGS: GateSettings = {
  concurrency: 2,
  threshold: 3,
  cooldownsMs: [200, 400],
  leaseTtlMs: 60_000,
  keepMs: 60_000,
};

/** A gate and an endpoint of its own for each test. */
function setup(settings: Partial<GateSettings> = {}) {
  const gate = makeEndpointGate({ redis, prefix, settings: { ...SETTINGS, ...settings } });
  return { gate, endpoint: endpointIdOf('acme', `https://hooks-${endpoints++}.example.test/in`) };
}

const token = (admission: Admission): string => {
  if (admission.kind !== 'send') throw new Error(`expected a lease, got ${admission.reason}`);
  return admission.token;
};

/** What the gate answered, in one word: send, probe, busy or failing. */
const said = (admission: Admission): string =>
  admission.kind === 'send' ? (admission.probe ? 'probe' : 'send') : admission.reason;

describe('endpointIdOf', () => {
  it('names one endpoint per tenant and origin, whatever the path or query', () => {
    expect(endpointIdOf('acme', 'https://hooks.example.test/a?x=1')).toBe(
      endpointIdOf('acme', 'https://HOOKS.example.test:443/b'),
    );
    expect(endpointIdOf('acme', 'https://hooks.example.test/a')).not.toBe(
      endpointIdOf('globex', 'https://hooks.example.test/a'),
    );
    expect(endpointIdOf('acme', 'https://hooks.example.test/a')).not.toBe(
      endpointIdOf('acme', 'https://hooks.example.test:8443/a'),
    );
  });
});

describe('endpoint gate', () => {
  it('lets `concurrency` deliveries in at once and turns the next away until one settles', async () => {
    const { gate, endpoint } = setup();
    const first = await gate.admit(endpoint, 'j1');
    const second = await gate.admit(endpoint, 'j2');
    const third = await gate.admit(endpoint, 'j3');

    expect([said(first), said(second)]).toEqual(['send', 'send']);
    expect(third).toMatchObject({ kind: 'wait', reason: 'busy', ahead: 0 });
    await gate.settle(endpoint, token(first), 'up');
    expect(said(await gate.admit(endpoint, 'j3'))).toBe('send');
  });

  it('frees the place of a delivery whose worker died once its lease expires', async () => {
    const { gate, endpoint } = setup({ concurrency: 1, leaseTtlMs: 150 });
    expect(said(await gate.admit(endpoint, 'j1'))).toBe('send');
    const refused = await gate.admit(endpoint, 'j2');
    expect(said(refused)).toBe('busy');
    expect((refused as { waitMs: number }).waitMs).toBeLessThanOrEqual(150);

    await sleep(200);

    expect(said(await gate.admit(endpoint, 'j2'))).toBe('send');
  });

  it('wakes parked deliveries, oldest first, as places free up', async () => {
    const { gate, endpoint } = setup({ concurrency: 1 });
    const running = await gate.admit(endpoint, 'j1');
    await gate.admit(endpoint, 'j2');
    expect(await gate.park(endpoint, 'j2')).toBe('parked');
    expect(await gate.park(endpoint, 'j3')).toBe('parked');

    const settled = await gate.settle(endpoint, token(running), 'up');

    expect(settled).toEqual({ transition: null, open: null, wake: ['j2'] });
    expect((await gate.state([endpoint]))[0]).toMatchObject({ inFlight: 0, parked: 1 });
  });

  it('tells a delivery parking after a place freed up to go itself, so none waits out its timer', async () => {
    const { gate, endpoint } = setup({ concurrency: 1 });
    const running = await gate.admit(endpoint, 'j1');
    expect(said(await gate.admit(endpoint, 'j2'))).toBe('busy');
    await gate.settle(endpoint, token(running), 'up');

    expect(await gate.park(endpoint, 'j2')).toBe('free');
  });

  it('opens the circuit after `threshold` consecutive failures and holds every delivery until the cool-down ends', async () => {
    const { gate, endpoint } = setup();
    const results = [];
    for (let i = 0; i < 3; i++)
      results.push(await gate.settle(endpoint, token(await gate.admit(endpoint, `j${i}`)), 'down', `j${i}`));

    expect(results.map((result) => result.transition)).toEqual([null, null, 'opened']);
    expect(results[2]!.open).toMatchObject({ ahead: 0 });
    const held = await gate.admit(endpoint, 'j9');
    expect(said(held)).toBe('failing');
    expect((held as { waitMs: number }).waitMs).toBeGreaterThan(100);
    expect(await gate.park(endpoint, 'j9')).toBe('parked');
    expect(await gate.failingCount()).toBeGreaterThanOrEqual(1);
    const [state] = await gate.state([endpoint]);
    expect(state).toMatchObject({ consecutiveFailures: 3, probing: false, parked: 2 });
    expect(state!.openUntil).toBeInstanceOf(Date);
  });

  it('wakes the deliveries waiting for a place when the circuit opens, to be held on its terms', async () => {
    const { gate, endpoint } = setup();
    const running = [await gate.admit(endpoint, 'j1'), await gate.admit(endpoint, 'j2')].map(token);
    for (const id of ['w1', 'w2', 'w3']) {
      expect(said(await gate.admit(endpoint, id))).toBe('busy');
      await gate.park(endpoint, id);
    }
    // Each failure while closed hands its place to the oldest waiting delivery.
    expect((await gate.settle(endpoint, running[0]!, 'down')).wake).toEqual(['w1']);
    const w1 = token(await gate.admit(endpoint, 'w1'));
    expect((await gate.settle(endpoint, running[1]!, 'down')).wake).toEqual(['w2']);
    await gate.admit(endpoint, 'w2');

    const opened = await gate.settle(endpoint, w1, 'down');

    expect(opened).toMatchObject({ transition: 'opened', wake: ['w3'] });
  });

  it('does not count an answer below 500 as a failure in a row', async () => {
    const { gate, endpoint } = setup();
    for (const health of ['down', 'down', 'up', 'down', 'down'] as const)
      await gate.settle(endpoint, token(await gate.admit(endpoint, 'j')), health);

    expect(said(await gate.admit(endpoint, 'j'))).toBe('send');
  });

  it('lets one probe through after the cool-down, reopens for longer when it fails, and closes on the first success', async () => {
    const { gate, endpoint } = setup({ cooldownsMs: [100, 300] });
    for (let i = 0; i < 3; i++) await gate.settle(endpoint, token(await gate.admit(endpoint, `j${i}`)), 'down');
    await gate.park(endpoint, 'waiting-1');
    await gate.park(endpoint, 'waiting-2');
    await sleep(150);

    const probe = await gate.admit(endpoint, 'p1');
    expect(said(probe)).toBe('probe');
    expect(said(await gate.admit(endpoint, 'p2'))).toBe('failing');
    const failed = await gate.settle(endpoint, token(probe), 'down');
    expect(failed.transition).toBe('reopened');
    expect(failed.open!.forMs).toBeGreaterThan(200);
    // Woken to sleep until the next probe time rather than until the failed probe's lease would have ended.
    expect(failed.wake).toEqual(['waiting-1', 'waiting-2']);

    await sleep(350);
    const second = await gate.admit(endpoint, 'p2');
    expect(said(second)).toBe('probe');
    const closed = await gate.settle(endpoint, token(second), 'up');

    expect(closed).toEqual({ transition: 'closed', open: null, wake: ['waiting-1', 'waiting-2'] });
    expect((await gate.state([endpoint]))[0]).toMatchObject({
      consecutiveFailures: 0,
      openUntil: null,
      probing: false,
    });
  });

  it('lets a probe go at once when asked, naming a parked delivery to make it', async () => {
    const { gate, endpoint } = setup({ cooldownsMs: [60_000] });
    for (let i = 0; i < 3; i++) await gate.settle(endpoint, token(await gate.admit(endpoint, `j${i}`)), 'down');
    await gate.park(endpoint, 'waiting');
    expect(said(await gate.admit(endpoint, 'x'))).toBe('failing');

    expect(await gate.probeNow(endpoint)).toEqual(['waiting']);

    expect(said(await gate.admit(endpoint, 'waiting'))).toBe('probe');
  });

  it('frees the probe mark of a probe whose worker died once its lease expires', async () => {
    const { gate, endpoint } = setup({ cooldownsMs: [0], leaseTtlMs: 150 });
    for (let i = 0; i < 3; i++) await gate.settle(endpoint, token(await gate.admit(endpoint, `j${i}`)), 'down');
    expect(said(await gate.admit(endpoint, 'p1'))).toBe('probe');
    expect(said(await gate.admit(endpoint, 'p2'))).toBe('failing');

    await sleep(200);

    expect(said(await gate.admit(endpoint, 'p2'))).toBe('probe');
  });
});
