import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import { randomBase62 } from '@cutout/shared/infra';
import { alphaAt, productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { getJob, settle, submitPhoto } from '../helpers/jobs.ts';
import { freePort, spawnProcess, stopAllProcesses, type RunningProcess } from '../helpers/processes.ts';
import { startSystem, type TestSystem } from '../helpers/system.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { waitUntil } from './stack.ts';

/**
 * Cutout on a Redis Cluster (REDIS_CLUSTER_NODES): three masters, one `{hash-tagged}`
 * prefix, and the whole flow a client sees — upload, cutout, download, signed webhook.
 */

const MASTERS = 3;

interface Cluster {
  ports: number[];
  nodes: string;
  close(): Promise<void>;
}

async function startCluster(): Promise<Cluster> {
  const directory = mkdtempSync(join(tmpdir(), 'cutout-cluster-'));
  const servers: RunningProcess[] = [];
  const close = async () => {
    for (const server of servers) server.killGroup('SIGKILL');
    await Promise.all(servers.map((server) => server.exited));
    rmSync(directory, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    for (let index = 0; index < MASTERS; index++) {
      const port = await freePort();
      const dir = join(directory, String(port));
      mkdirSync(dir);
      const server = spawnProcess({
        name: `redis-cluster-${port}`,
        command: 'redis-server',
        args: [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, 'nodes.conf'),
          '--maxmemory-policy',
          'noeviction',
        ],
      });
      servers.push(server);
      ports.push(port);
      await server.waitForLine('Ready to accept connections', 15_000);
    }
    const create = spawnProcess({
      name: 'redis-cli-cluster-create',
      command: 'redis-cli',
      args: [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
    });
    const created = await create.waitForExit(30_000);
    if (created.code !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.output()}`);
    for (const port of ports) await clusterStateOk(port);
    return { ports, nodes: ports.map((port) => `127.0.0.1:${port}`).join(','), close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Every node must see all slots covered before clients use it. */
async function clusterStateOk(port: number): Promise<void> {
  const node = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  try {
    let info = '';
    await waitUntil(
      async () => {
        info = await node.cluster('INFO');
        return /cluster_state:ok/.test(info) ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, describe: () => `node ${port}: ${info.split('\n')[0]}` },
    );
  } finally {
    node.disconnect();
  }
}

describe('on a Redis Cluster', () => {
  let cluster: Cluster;
  let system: TestSystem;
  let receiver: WebhookReceiver;
  const prefix = `{cutout-test-${randomBase62(10)}}`;

  beforeAll(async () => {
    cluster = await startCluster();
    receiver = await startWebhookReceiver();
    system = await startSystem({
      env: { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_PREFIX: prefix },
      faults: { latencyMs: 50 },
    });
  }, 90_000);
  afterAll(async () => {
    await system?.close();
    await receiver?.close();
    await cluster?.close();
    await stopAllProcesses();
  }, 60_000);

  it('processes a photo end to end: status, result download and a signed webhook', async () => {
    const ready = await request(`${system.apiUrl}/readyz`);
    expect(ready.statusCode).toBe(200);
    expect(((await ready.body.json()) as { checks: { redis: unknown } }).checks.redis).toEqual({ ok: true });

    const photo = await productImage('jpeg');
    const id = await submitPhoto(system, photo, { webhook_url: receiver.url });
    const [view] = await settle(system, [id]);
    expect(view).toMatchObject({ status: 'succeeded', result: { content_type: 'image/png' } });

    const download = await request(view!.result.url);
    expect(download.statusCode).toBe(200);
    const png = Buffer.from(await download.body.arrayBuffer());
    const { width, height, object } = PRODUCT_SHOT;
    expect(
      await alphaAt(png, [
        [0, 0],
        [width - 1, height - 1],
      ]),
    ).toEqual([0, 0]);
    expect(await alphaAt(png, [[object.left + object.width / 2, object.top + object.height / 2]])).toEqual([255]);

    const [delivery] = await receiver.waitFor(1);
    const account = await request(`${system.apiUrl}/v1/account`, { headers: { 'x-api-key': system.apiKey } });
    const { webhook_secret: secret } = (await account.body.json()) as { webhook_secret: string };
    const event = new Webhook(secret).verify(delivery!.body, {
      'webhook-id': String(delivery!.headers['webhook-id']),
      'webhook-timestamp': String(delivery!.headers['webhook-timestamp']),
      'webhook-signature': String(delivery!.headers['webhook-signature']),
    }) as { type: string; data: { id: string } };
    expect(event).toMatchObject({ type: 'job.succeeded', data: { id } });

    // The state lives in the cluster, in the one slot of the prefix's hash tag.
    const keys = await keysOnCluster(cluster.ports, `${prefix}:*`);
    expect(keys.some((key) => key === `${prefix}:job:${id}`)).toBe(true);
    expect(keys.some((key) => key.startsWith(`${prefix}:bull:remove-bg:`))).toBe(true);
    expect((await getJob(system, id)).status).toBe('succeeded');
  }, 90_000);
});

async function keysOnCluster(ports: number[], pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for (const port of ports) {
    const node = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    try {
      keys.push(...(await node.keys(pattern)));
    } finally {
      node.disconnect();
    }
  }
  return keys;
}
