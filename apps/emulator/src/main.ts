import { pino } from 'pino';
import { parseEmulatorEnv } from './config.ts';
import { makeFaultSettings } from './faults.ts';
import { startEmulator } from './server.ts';

// The only place that reads process.env: everything below gets plain values.
const parsed = parseEmulatorEnv(process.env);
if (!parsed.ok) {
  process.stderr.write(`${parsed.message}\n`);
  process.exit(1);
}
const { config } = parsed;

const log = pino({
  name: 'emulator',
  level: config.logLevel,
  redact: { paths: ['req.headers["x-api-key"]', 'headers["x-api-key"]'], censor: '[REDACTED]' },
});

const emulator = await startEmulator({
  keys: config.keys,
  faults: config.faults,
  logger: log,
  maxUploadBytes: config.maxUploadBytes,
  port: config.port,
  host: config.host,
});
// Loud on purpose: nobody should mistake this for the real ByByBG.
log.info(
  {
    url: emulator.url,
    endpoint: `${emulator.url}/v1/remove-bg`,
    keys: config.keys.length,
    faults: makeFaultSettings(config.faults),
  },
  'ByByBG EMULATOR listening (not the real ByByBG API)',
);

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  // A second signal means "now": do not wait for a slow close.
  if (stopping) process.exit(1);
  stopping = true;
  log.info({ signal }, 'emulator shutting down');
  try {
    await emulator.close();
    process.exit(0);
  } catch (error) {
    log.error({ err: error }, 'emulator did not close cleanly');
    process.exit(1);
  }
}
process.on('SIGINT', (signal) => void shutdown(signal));
process.on('SIGTERM', (signal) => void shutdown(signal));
