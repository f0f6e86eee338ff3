/**
 * `npm start`: the whole system in one process for development — API, worker, and, when
 * nothing real is configured, an embedded S3 server and the ByByBG emulator.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import {
  configOrExit,
  createLogger,
  createMetrics,
  exitOnStartupError,
  onShutdownSignal,
  randomBase62,
} from '@cutout/shared/infra';
import { startApi } from '../apps/api/src/server.ts';
import { startWorker } from '../apps/worker/src/server.ts';
import { startEmulator } from '../apps/emulator/src/server.ts';

const DEV_TENANT = 'dev';
const EMULATOR_KEY = 'emulator-dev-key';
const DEV_WEBHOOK_ALLOW_PRIVATE = '127.0.0.0/8,::1/128';
const dataDir = resolve(process.env.CUTOUT_DATA_DIR ?? '.data');
mkdirSync(dataDir, { recursive: true });

const env: Record<string, string | undefined> = { ...process.env };
const log = createLogger({ level: env.LOG_LEVEL ?? 'info', name: 'cutout', pretty: process.stdout.isTTY });
const stops: (() => Promise<void>)[] = [];
const notes: string[] = [];

try {
  if (!env.S3_ENDPOINT) {
    // s3rver is a development dependency: loaded only when no real S3 is configured.
    const { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3 } = await import('@cutout/shared/embedded-s3');
    const s3 = await startEmbeddedS3({
      directory: join(dataDir, 's3'),
      bucket: env.S3_BUCKET ?? 'cutout',
      port: Number(env.EMBEDDED_S3_PORT ?? 4568),
    });
    stops.push(() => s3.close());
    Object.assign(env, {
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    });
    notes.push(`S3:       embedded server at ${s3.endpoint}, files in ${join(dataDir, 's3')}`);
  }
  const usingEmulator = !env.BYBYBG_API_KEY;
  if (usingEmulator) {
    const emulator = await startEmulator({
      port: Number(env.EMULATOR_PORT ?? 4010),
      host: '127.0.0.1',
      keys: [EMULATOR_KEY],
      logger: false,
    });
    stops.push(() => emulator.close());
    Object.assign(env, { BYBYBG_API_URL: emulator.url, BYBYBG_API_KEY: EMULATOR_KEY });
  }
  if (!env.WEBHOOK_ALLOW_PRIVATE) {
    // Development receivers run on this machine; production keeps the SSRF guard closed.
    env.WEBHOOK_ALLOW_PRIVATE = DEV_WEBHOOK_ALLOW_PRIVATE;
    notes.push(
      `Webhooks: loopback receivers allowed for development (WEBHOOK_ALLOW_PRIVATE=${DEV_WEBHOOK_ALLOW_PRIVATE})`,
    );
  }
  const devKey = env.API_KEYS ? undefined : readOrCreateDevKey();
  if (devKey) env.API_KEYS = `${DEV_TENANT}:${devKey}`;

  const config = configOrExit(env, { bybybgKey: true });
  // One registry for both, so the API's /metrics shows the worker's metrics too.
  const metrics = createMetrics();
  const api = await startApi(config, log.child({ app: 'api' }), { metrics });
  stops.unshift(() => api.close());
  const worker = await startWorker(config, log.child({ app: 'worker' }), { metrics, serveMetrics: false });
  const dashboard = config.adminApiKey
    ? `, queue dashboard at ${config.api.publicBaseUrl}/admin/queues (ADMIN_API_KEY)`
    : '';
  notes.push(`Metrics:  ${config.api.publicBaseUrl}/metrics (API and worker)${dashboard}`);
  stops.unshift(() => worker.close());

  const tenant = devKey ? DEV_TENANT : config.api.bootstrapKeys[0]?.tenantId;
  const secret = tenant ? (await api.services.tenants.webhookSecrets(tenant))[0] : undefined;
  printBanner({ url: config.api.publicBaseUrl, key: devKey, secret, usingEmulator, emulatorUrl: config.bybybg.apiUrl });
  onShutdownSignal(log, async () => {
    for (const stop of stops) await stop();
  });
} catch (error) {
  for (const stop of stops) await stop().catch(() => undefined);
  exitOnStartupError(log, error, 'cutout');
}

/** The development API key survives restarts, so scripts and shell history keep working. */
function readOrCreateDevKey(): string {
  const file = join(dataDir, 'dev-api-key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const key = `ck_dev_${randomBase62(32)}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

function printBanner({
  url,
  key,
  secret,
  usingEmulator,
  emulatorUrl,
}: {
  url: string;
  key?: string;
  secret?: string;
  usingEmulator: boolean;
  emulatorUrl: string;
}): void {
  const shownKey = key ?? '<a key from API_KEYS>';
  const lines = [
    '',
    `  Cutout is running (Node.js ${process.version})`,
    '',
    `  API:      ${url}   (interactive docs: ${url}/docs, guide: README.md)`,
    `  API key:  ${shownKey}${key ? `   (tenant "dev", kept in ${relative(process.cwd(), join(dataDir, 'dev-api-key'))})` : ''}`,
    ...(secret ? [`  Webhook signing secret: ${secret}`] : []),
    ...notes.map((note) => `  ${note}`),
    '',
    '  Try it:',
    `    curl -s -X POST ${url}/v1/jobs -H "X-API-KEY: ${shownKey}" -F "file=@shoe.jpg"`,
    `    curl -s ${url}/v1/jobs/<id> -H "X-API-KEY: ${shownKey}"`,
    `    curl -s -X POST ${url}/v1/jobs/<id>/review-link -H "X-API-KEY: ${shownKey}"   (open its url in a browser)`,
    '',
  ];
  if (usingEmulator) {
    lines.push(
      '  ****************************************************************************',
      `  *  WARNING: no BYBYBG_API_KEY is set, so the ByByBG EMULATOR at ${emulatorUrl}`,
      '  *  stands in for ByByBG. Results come from a simple flood fill, not the real',
      '  *  service. Set BYBYBG_API_KEY (and BYBYBG_API_URL) to use ByByBG.',
      '  ****************************************************************************',
      '',
    );
  }
  lines.push('  Press Ctrl-C to stop.', '');
  process.stdout.write(`${lines.join('\n')}\n`);
}
