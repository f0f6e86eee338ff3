import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { UnrecoverableError, type Job } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createLogger,
  createRedis,
  newJobId,
  webhookMessageId,
  type Redis,
  type Storage,
  type WebhookPayload,
} from '@cutout/shared/infra';
import { createGuardedAgent } from '@cutout/shared/security';
import {
  makeEndpointGate,
  makeFairScheduler,
  makeJobStore,
  makeBatchStore,
  makeGoneEndpoints,
  makeTenantStore,
  makeWebhookAttemptLog,
  makeWebhookDeliveryLog,
  type JobRecord,
} from '@cutout/shared/stores';
import { makeDeliverWebhookProcessor } from './deliver-webhook.ts';
import { unlinkPrefix } from '../../../../test/helpers/redis-keys.ts';

// Everything stays on loopback: the receiver listens on 127.0.0.1 and the only host name,
// hooks.example.test, goes through a stub resolver that answers 127.0.0.1.

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `cutout-test-${randomBytes(6).toString('hex')}`;
const HOST = 'hooks.example.test';

const stubLookup: LookupFunction = (hostname, options, callback) => {
  if (hostname !== HOST)
    return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
};

let redis: Redis;
let server: Server;
let port: number;
let connections = 0;
const agents: ReturnType<typeof createGuardedAgent>[] = [];

beforeAll(async () => {
  redis = createRedis(REDIS_URL) as Redis;
  await redis.connect();
  server = createServer((_request, response) => response.writeHead(204).end());
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((agent) => agent.close()));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await unlinkPrefix(redis, prefix);
  await redis.quit();
});

function setup(allowPrivate: string[]) {
  const dispatcher = createGuardedAgent({ policy: { allowPrivate }, lookup: stubLookup, connectTimeoutMs: 2_000 });
  agents.push(dispatcher);
  const jobs = makeJobStore({ redis, prefix, retentionMs: 60_000 });
  const attempts = makeWebhookAttemptLog({ redis, prefix, retentionMs: 60_000 });
  const deliveries = makeWebhookDeliveryLog({ redis, prefix, retentionMs: 60_000 });
  const gateSettings = { concurrency: 2, threshold: 5, cooldownsMs: [1_000], leaseTtlMs: 10_000, keepMs: 60_000 };
  const deliver = makeDeliverWebhookProcessor({
    jobs,
    batches: makeBatchStore({ redis, prefix, retentionMs: 60_000 }),
    deliveries,
    gate: makeEndpointGate({ redis, prefix, settings: gateSettings }),
    fair: makeFairScheduler({ redis, prefix: `${prefix}:webhooks` }),
    // Every delivery here is admitted at once: nothing is ever held, so nothing needs waking.
    wake: async () => undefined,
    retryScheduleMs: [0, 1_000, 2_000, 3_000, 4_000],
    endpointConcurrency: gateSettings.concurrency,
    leaseTtlMs: gateSettings.leaseTtlMs,
    publicBaseUrl: 'http://127.0.0.1:3000',
    tenants: makeTenantStore({ redis, prefix }),
    // A failed job has no result to presign, so storage is never used.
    storage: {} as Storage,
    attempts,
    goneEndpoints: makeGoneEndpoints({ redis, prefix }),
    resultUrlTtlMs: 60_000,
    timeoutMs: 2_000,
    dispatcher,
    log: createLogger({ level: 'silent', name: 'test' }),
  });
  return { jobs, attempts, deliveries, deliver };
}

/** A failed job with a webhook, and the BullMQ job of its first delivery attempt. */
async function failedJobWithWebhook(
  jobs: ReturnType<typeof makeJobStore>,
  webhookUrl: string,
): Promise<Job<WebhookPayload>> {
  const id = newJobId();
  const record: JobRecord = {
    id,
    tenantId: 'acme',
    status: 'failed',
    createdAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    attempts: 1,
    upstreamCalls: 1,
    originalKey: `originals/acme/${id}`,
    originalBytes: 10,
    originalContentType: 'image/png',
    error: { code: 'upstream_rejected', message: 'rejected', retryable: false },
    webhookUrl,
  };
  await jobs.create(record);
  const data: WebhookPayload = {
    messageId: webhookMessageId(id, 'job.failed'),
    type: 'job.failed',
    jobId: id,
    tenantId: 'acme',
  };
  return {
    id: data.messageId,
    data,
    attemptsMade: 0,
    timestamp: Date.now(),
    opts: { attempts: 5 },
  } as unknown as Job<WebhookPayload>;
}

describe('deliverWebhook through the guarded agent', () => {
  it('fails the delivery for good, without connecting, when the host resolves to loopback outside the allow-list', async () => {
    const { jobs, attempts, deliver } = setup([]);
    const job = await failedJobWithWebhook(jobs, `http://${HOST}:${port}/hook`);
    const before = connections;

    await expect(deliver(job)).rejects.toBeInstanceOf(UnrecoverableError);

    expect(connections).toBe(before);
    const { webhook } = (await jobs.get(job.data.jobId))!;
    expect(webhook).toMatchObject({ state: 'failed', attempts: 1 });
    expect(webhook?.lastError).toMatch(/^address not allowed/);
    // The client sees that the address is refused, not which internal address the name resolved to.
    expect(webhook?.lastError).not.toContain('127.0.0.1');
    expect(await attempts.list(job.data.jobId)).toEqual([
      expect.objectContaining({
        statusCode: null,
        webhookId: job.data.messageId,
        eventType: 'job.failed',
        error: webhook?.lastError,
      }),
    ]);
  });

  it('fails the delivery for good when the URL is a loopback IP literal outside the allow-list', async () => {
    const { jobs, deliver } = setup([]);
    const job = await failedJobWithWebhook(jobs, `http://127.0.0.1:${port}/hook`);
    const before = connections;

    await expect(deliver(job)).rejects.toBeInstanceOf(UnrecoverableError);

    expect(connections).toBe(before);
    expect((await jobs.get(job.data.jobId))?.webhook?.state).toBe('failed');
  });

  it('delivers to the same host once its address is in the allow-list', async () => {
    const { jobs, attempts, deliveries, deliver } = setup(['127.0.0.0/8']);
    const job = await failedJobWithWebhook(jobs, `http://${HOST}:${port}/hook`);
    const before = connections;

    await deliver(job);

    expect(connections).toBe(before + 1);
    expect((await jobs.get(job.data.jobId))?.webhook).toMatchObject({
      state: 'delivered',
      attempts: 1,
      lastStatusCode: 204,
    });
    expect(await attempts.list(job.data.jobId)).toEqual([expect.objectContaining({ statusCode: 204, error: null })]);
    expect(await deliveries.get(job.data.messageId)).toMatchObject({
      webhookId: job.data.messageId,
      eventType: 'job.failed',
      jobId: job.data.jobId,
      tenantId: 'acme',
      state: 'delivered',
      attempts: 1,
      lastStatusCode: 204,
    });
  });
});
