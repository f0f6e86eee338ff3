import { lookup } from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startApiProcess, startWorkerProcess, type RunningProcess } from '../helpers/processes.ts';
import { distinctPhotos, getJob, startFaultStack, submitJob, waitUntil, type FaultStack, type Json } from './stack.ts';

// Internal host names, as compose's DNS answers them, resolved by the real resolver from
// test/fixtures/netns-hosts. Run only through scripts/test-netns.sh (a loopback-only network
// namespace with that hosts file): a broken guard then reaches nothing.
const interfaces = Object.keys(networkInterfaces());
if (process.env.CUTOUT_NETNS !== '1' || interfaces.some((name) => name !== 'lo')) {
  throw new Error(
    `not inside a loopback-only network namespace (CUTOUT_NETNS=${process.env.CUTOUT_NETNS ?? ''}, interfaces: ${interfaces.join(', ')}); run bash scripts/test-netns.sh`,
  );
}

const INTERNAL: Record<string, string> = {
  'minio.cutout.test': '10.0.0.5',
  'redis.cutout.test': '172.18.0.3',
  'hooks.cutout.test': '192.168.7.7',
  'metadata.cutout.test': '169.254.169.254',
  'storage6.cutout.test': 'fd00::5',
};
// Loopback appears in honest info lines (where the API listens); it is checked in messages only.
const LOOPBACK_NAME = 'vm.cutout.test';
const ADDRESSES = Object.values(INTERNAL);
/** Any dotted quad or bracket-free IPv6 address: a client message must quote none. */
const ANY_ADDRESS = /\b\d{1,3}(\.\d{1,3}){3}\b|\b[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}\b/i;

const addressesIn = (text: string) => ADDRESSES.filter((address) => text.includes(address));

/** Stands in for ByByBG answering with a result URL on the deployment's internal object store. */
async function startUpstreamAnsweringInternalUrl(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume().on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          data: { result_url: 'http://minio.cutout.test:9000/cutout/results/r1.png?X-Amz-Signature=0f1e2d' },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('refusals of internal addresses', () => {
  let stack: FaultStack;
  let upstream: Awaited<ReturnType<typeof startUpstreamAnsweringInternalUrl>>;
  let api: { process: RunningProcess; url: string };
  let worker: RunningProcess;
  const post = async (path: string, body: unknown): Promise<{ status: number; body: Json }> => {
    const response = await request(`${api.url}${path}`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'x-api-key': stack.apiKey, 'content-type': 'application/json' },
    });
    return { status: response.statusCode, body: (await response.body.json()) as Json };
  };
  const get = async (path: string): Promise<string> => {
    const response = await request(`${api.url}${path}`, { headers: { 'x-api-key': stack.apiKey } });
    return response.body.text();
  };

  beforeAll(async () => {
    for (const [name, address] of [...Object.entries(INTERNAL), [LOOPBACK_NAME, '127.0.0.1'] as const]) {
      const answer = await lookup(name).catch(() => undefined);
      if (answer?.address !== address)
        throw new Error(
          `${name} does not resolve to ${address}: /etc/hosts lacks test/fixtures/netns-hosts (run bash scripts/test-netns.sh)`,
        );
    }
    stack = await startFaultStack({});
    upstream = await startUpstreamAnsweringInternalUrl();
    // No private range allowed: the guard refuses every one of the names above.
    const env = stack.env({
      LOG_LEVEL: 'debug',
      WEBHOOK_ALLOW_PRIVATE: '',
      WEBHOOK_RETRY_SCHEDULE: '0',
      BYBYBG_API_URL: upstream.url,
    });
    [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
  }, 90_000);
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
  }, 60_000);

  it('answers an image_url that resolves to an internal address with 422 invalid_image_url naming no address', async () => {
    for (const name of ['minio.cutout.test', 'metadata.cutout.test', 'storage6.cutout.test', LOOPBACK_NAME]) {
      const { status, body } = await post('/v1/jobs', { image_url: `http://${name}:9000/cutout/originals/x.jpg` });

      expect(status).toBe(422);
      expect(body.error.code).toBe('invalid_image_url');
      expect(body.error.message).toContain('not public');
      expect(body.error.message).not.toMatch(ANY_ADDRESS);
    }
  });

  it('fails batch items whose image_url resolves to an internal address without naming it', async () => {
    const created = await post('/v1/batches', {
      items: [
        { image_url: 'http://redis.cutout.test:6379/a.jpg', client_ref: 'redis' },
        { image_url: 'http://minio.cutout.test:9000/cutout/b.jpg', client_ref: 'minio' },
      ],
    });
    expect(created.status).toBe(202);
    const id = String(created.body.id);
    await waitUntil(
      async () => {
        const batch = JSON.parse(await get(`/v1/batches/${id}`)) as Json;
        return batch.status === 'completed' ? batch : undefined;
      },
      { timeoutMs: 30_000, describe: () => `batch ${id} not completed` },
    );

    const rows = (await get(`/v1/batches/${id}/results`))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(rows.map((row) => [row.client_ref, row.status, row.error_code])).toEqual([
      ['redis', 'failed', 'invalid_image_url'],
      ['minio', 'failed', 'invalid_image_url'],
    ]);
    for (const row of rows) {
      expect(row.error_message).toContain('not public');
      expect(row.error_message).not.toMatch(ANY_ADDRESS);
    }
  });

  it('fails a job whose ByByBG result URL, and gives up a webhook whose host, resolves to an internal address, naming neither', async () => {
    const [photo] = await distinctPhotos(1);
    const id = await submitJob(api.url, stack.apiKey, photo!, { webhook_url: 'http://hooks.cutout.test/cutout' });
    const job = await waitUntil(
      async () => {
        const view = await getJob(api.url, stack.apiKey, id);
        return view.webhook?.state === 'failed' ? view : undefined;
      },
      { timeoutMs: 30_000, describe: () => `webhook of ${id} not failed` },
    );

    expect(job).toMatchObject({ status: 'failed', error: { code: 'upstream_bad_response', retryable: false } });
    expect(job.error.message).toContain('not public');
    expect(job.webhook.last_error).toMatch(/^address not allowed/);
    const attempts = JSON.parse(await get(`/v1/jobs/${id}/webhook-attempts`)) as Json;
    expect(attempts.data).toHaveLength(1);
    for (const text of [job.error.message, job.webhook.last_error, attempts.data[0].error]) {
      expect(text).not.toMatch(ANY_ADDRESS);
      expect(text).not.toMatch(/minio|hooks|X-Amz/);
    }
  });

  it('logs the resolved addresses at debug level only', () => {
    const entries = [...api.process.logs(), ...worker.logs()];
    const atInfo = entries.filter((entry) => Number(entry.level) >= 30);
    const atDebug = entries.filter((entry) => Number(entry.level) < 30);

    expect(addressesIn(JSON.stringify(atInfo))).toEqual([]);
    // Each refusal above is in the debug log with its host and address, for the operator.
    const refusals = atDebug
      .filter((entry) => entry.msg === 'URL guard refused an address')
      .map((entry) => `${entry.host}=${entry.address}`);
    for (const name of [
      'minio.cutout.test',
      'metadata.cutout.test',
      'storage6.cutout.test',
      'redis.cutout.test',
      'hooks.cutout.test',
    ]) {
      expect(refusals).toContain(`${name}=${INTERNAL[name]}`);
    }
    expect(refusals).toContain(`${LOOPBACK_NAME}=127.0.0.1`);
  });
});
