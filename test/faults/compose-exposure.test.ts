import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/processes.ts';

/**
 * What `docker compose up` exposes, read from docker-compose.yml as compose would resolve it:
 * no port on other interfaces by default, no API key anyone could know, and the app never
 * holding MinIO's root credentials. `.ci/run` validates the file with docker-compose itself.
 */

type Json = Record<string, any>;
const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as Json;
const services = compose.services as Record<string, Json>;
const APP_SERVICES = ['api', 'worker'];

/**
 * Compose's variable interpolation (`${X}`, `${X:-default}`, `${X-default}`, `${X:?error}`,
 * `${X?error}`, `$$`), enough to read this file's values; `env` stands for the shell and .env.
 */
function interpolate(value: unknown, env: Record<string, string>): string {
  return String(value).replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
    (_match, name: string | undefined, colon: string, kind: string, operand: string) => {
      if (name === undefined) return '$';
      const set = env[name];
      const missing = set === undefined || (colon === ':' && set === '');
      if (!missing) return set;
      if (kind === '?') throw new Error(`${name}: ${operand}`);
      return kind === '-' ? operand : '';
    },
  );
}

const environmentOf = (service: string, env: Record<string, string>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(services[service]!.environment as Json).map(([name, value]) => [name, interpolate(value, env)]),
  );

/** Every published port as compose reads it: `[host_ip:][host_port:]container_port` or the long form. */
function publishedPorts(env: Record<string, string>): { service: string; hostIp: string | undefined; spec: string }[] {
  return Object.entries(services).flatMap(([service, definition]) =>
    ((definition.ports ?? []) as unknown[]).map((port) => {
      if (typeof port === 'object' && port) {
        const long = port as Json;
        return {
          service,
          hostIp: long.host_ip === undefined ? undefined : interpolate(long.host_ip, env),
          spec: JSON.stringify(long),
        };
      }
      const spec = interpolate(port, env);
      const parts = spec.split(':');
      return { service, hostIp: parts.length === 3 ? parts[0] : undefined, spec };
    }),
  );
}

const KEYS = { API_KEYS: 'acme:0123456789abcdef0123456789abcdef' };

describe('docker-compose.yml', () => {
  it('publishes every port on 127.0.0.1 unless the operator overrides it', () => {
    const ports = publishedPorts(KEYS);

    expect(ports.length).toBeGreaterThan(0);
    expect(ports.filter((port) => port.hostIp !== '127.0.0.1')).toEqual([]);
    // The one override there is reads as intended, and it only moves the API.
    expect(
      publishedPorts({ ...KEYS, API_PUBLISH_ADDRESS: '0.0.0.0' })
        .filter((port) => port.hostIp !== '127.0.0.1')
        .map((port) => port.service),
    ).toEqual(['api']);
  });

  it('refuses to resolve without API_KEYS, saying what to set, and ships no key of its own', () => {
    for (const service of APP_SERVICES) {
      expect(() => environmentOf(service, {})).toThrowError(/^API_KEYS: API_KEYS must be set.*tenant:key/);
      expect(() => environmentOf(service, { API_KEYS: '' })).toThrowError(/API_KEYS must be set/);
      expect(environmentOf(service, KEYS).API_KEYS).toBe(KEYS.API_KEYS);
    }
  });

  it("gives the api and worker a MinIO user of their own, never MinIO's root credentials", () => {
    // Defaults, and an operator's own root credentials: neither may reach the app.
    for (const env of [
      KEYS,
      { ...KEYS, MINIO_ROOT_USER: 'root-chosen-by-operator', MINIO_ROOT_PASSWORD: 'root-secret-chosen-by-operator' },
    ]) {
      const minio = environmentOf('minio', env);
      const init = environmentOf('minio-init', env);
      for (const service of APP_SERVICES) {
        const app = environmentOf(service, env);
        expect(app.S3_ACCESS_KEY_ID).not.toBe(minio.MINIO_ROOT_USER);
        expect(app.S3_SECRET_ACCESS_KEY).not.toBe(minio.MINIO_ROOT_PASSWORD);
        expect(Object.values(app)).not.toContain(minio.MINIO_ROOT_PASSWORD);
        // The user minio-init creates is the one the app connects as.
        expect([init.MINIO_APP_USER, init.MINIO_APP_PASSWORD]).toEqual([
          app.S3_ACCESS_KEY_ID,
          app.S3_SECRET_ACCESS_KEY,
        ]);
      }
      expect(init.MINIO_ROOT_PASSWORD).toBe(minio.MINIO_ROOT_PASSWORD);
    }
    // Only MinIO and its init container know the root password.
    const holders = Object.keys(services).filter((service) =>
      JSON.stringify(services[service]!.environment ?? {}).includes('MINIO_ROOT_PASSWORD'),
    );
    expect(holders.sort()).toEqual(['minio', 'minio-init']);
  });

  it('pulls every image at a release tag, never a moving one', () => {
    const pulled = Object.entries(services)
      .filter(([, definition]) => !definition.build)
      .map(([service, definition]) => ({ service, image: String(definition.image) }));

    expect(pulled.map(({ service }) => service).sort()).toEqual(['minio', 'minio-init', 'redis']);
    // x.y.z (with a variant such as -alpine), or MinIO's RELEASE.<timestamp>.
    const release = /^[\w./-]+:(\d+\.\d+\.\d+(-[\w.]+)?|RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)$/;
    expect(pulled.filter(({ image }) => !release.test(image))).toEqual([]);
  });

  it('health-checks every long-running service, the worker on its metrics port', () => {
    const longRunning = Object.keys(services).filter((service) => services[service]!.restart !== 'no');

    expect(longRunning.sort()).toEqual(['api', 'emulator', 'minio', 'redis', 'worker']);
    expect(longRunning.filter((service) => !services[service]!.healthcheck?.test)).toEqual([]);
    const workerPort = environmentOf('worker', KEYS).WORKER_METRICS_PORT;
    expect(JSON.stringify(services.worker!.healthcheck.test)).toContain(`127.0.0.1:${workerPort}/healthz`);
  });

  it('runs each app as one node process on its TypeScript entry point, without a loader', () => {
    for (const app of ['api', 'worker', 'emulator']) {
      const [command, ...args] = services[app]!.command as string[];
      expect(command).toBe('node');
      expect(args).toEqual([`apps/${app}/src/main.ts`]);
      expect(existsSync(join(REPO_ROOT, args[0]!)), args[0]).toBe(true);
    }
  });
});

describe('docker/minio-init.sh', () => {
  const run = promisify(execFile);
  const directory = mkdtempSync(join(tmpdir(), 'cutout-minio-init-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  // Stands in for the mc client: records each call, keeps the policy it is given, and
  // remembers an attached policy the way MinIO would.
  const fakeMc = join(directory, 'mc');
  writeFileSync(
    fakeMc,
    `#!/bin/sh
echo "$*" >> "${directory}/calls"
case "$1 $2 $3" in
  "admin policy create") cp "$6" "${directory}/policy.json" ;;
  "admin policy attach") echo "$5" > "${directory}/attached" ;;
  "admin user info") echo "AccessKey: $5"; [ -f "${directory}/attached" ] && echo "PolicyName: $(cat "${directory}/attached")" ;;
esac
exit 0
`,
  );
  chmodSync(fakeMc, 0o755);

  const initEnv = {
    PATH: `${directory}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    MINIO_URL: 'http://minio:9000',
    MINIO_ROOT_USER: 'root',
    MINIO_ROOT_PASSWORD: 'root-secret',
    S3_BUCKET: 'catalog',
    MINIO_APP_USER: 'cutout-app',
    MINIO_APP_PASSWORD: 'app-secret-123',
  };
  const calls = () => readFileSync(join(directory, 'calls'), 'utf8').trim().split('\n');

  it('creates the bucket and a user whose policy reaches that bucket only, once however often it runs', async () => {
    await run('sh', [join(REPO_ROOT, 'docker/minio-init.sh')], { env: initEnv });
    await run('sh', [join(REPO_ROOT, 'docker/minio-init.sh')], { env: initEnv });

    expect(calls().filter((call) => call.startsWith('admin policy attach'))).toEqual([
      'admin policy attach cutout cutout-bucket-catalog --user cutout-app',
    ]);
    expect(calls()).toContain('admin user add cutout cutout-app app-secret-123');
    expect(calls()).toContain('mb --ignore-existing cutout/catalog');
    const policy = JSON.parse(readFileSync(join(directory, 'policy.json'), 'utf8')) as Json;
    const resources = (policy.Statement as Json[]).flatMap((statement) => statement.Resource as string[]);
    expect(resources.sort()).toEqual(['arn:aws:s3:::catalog', 'arn:aws:s3:::catalog/*']);
    // Object work and listing only: no bucket policy, lifecycle or deletion for a leaked app key.
    const actions = (policy.Statement as Json[]).flatMap((statement) => statement.Action as string[]);
    expect(actions.sort()).toEqual([
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:GetBucketLocation',
      's3:GetObject',
      's3:ListBucket',
      's3:ListBucketMultipartUploads',
      's3:ListMultipartUploadParts',
      's3:PutObject',
    ]);
  });

  it('refuses to hand the root user to the app', async () => {
    const failure = await run('sh', [join(REPO_ROOT, 'docker/minio-init.sh')], {
      env: { ...initEnv, MINIO_APP_USER: 'root' },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );

    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain('must differ from MINIO_ROOT_USER');
  });
});
