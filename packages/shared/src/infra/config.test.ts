import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

const KEY_A = 'ak_0123456789abcdefghijklmn';
const KEY_B = 'bk_zyxwvutsrqponmlkjihgfedcba';

/** The ConfigError `loadConfig` throws for `env`; fails the test when it does not throw one. */
function configError(env: Record<string, string | undefined>, needs: { bybybgKey?: boolean } = {}): ConfigError {
  try {
    loadConfig(env, needs);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected loadConfig to throw a ConfigError');
}

const variablesNamed = (error: ConfigError) =>
  [...new Set(error.problems.map((problem) => problem.split(':')[0]))].sort();

describe('loadConfig defaults', () => {
  it('starts from documented defaults when the environment is empty', () => {
    const config = loadConfig({});

    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: 'cutout', clusterNodes: [] });
    expect(config.api.port).toBe(3000);
    expect(config.api.host).toBe('127.0.0.1');
    expect(config.api.maxUploadBytes).toBe(25_000_000);
    expect(config.api.bootstrapKeys).toEqual([]);
    expect(config.jobRetentionMs).toBe(7 * 24 * 3_600_000);
    expect(config.webhooks.retryScheduleMs).toEqual([
      0,
      5_000,
      5 * 60_000,
      30 * 60_000,
      2 * 3_600_000,
      5 * 3_600_000,
      10 * 3_600_000,
      10 * 3_600_000,
    ]);
    expect(config.bybybg.apiKeys).toEqual([]);
    expect(config.s3.endpoint).toBeUndefined();
    expect(config.logLevel).toBe('info');
  });

  it("reads the quality flags' thresholds, and refuses a share outside 0–1", () => {
    expect(loadConfig({}).worker.renditionConcurrency).toBe(2);
    expect(loadConfig({}).worker.quality).toEqual({
      emptyBelow: 0.005,
      unremovedFrom: 0.98,
      edgeContactFrom: 0.1,
      semitransparentFrom: 0.5,
      tinyBelow: 0.02,
    });
    expect(loadConfig({ QUALITY_EDGE_CONTACT: '0.25', QUALITY_TINY_COVERAGE: '0' }).worker.quality).toMatchObject({
      edgeContactFrom: 0.25,
      tinyBelow: 0,
    });
    expect(variablesNamed(configError({ QUALITY_UNREMOVED_COVERAGE: '1.5', QUALITY_EMPTY_COVERAGE: 'none' }))).toEqual([
      'QUALITY_EMPTY_COVERAGE',
      'QUALITY_UNREMOVED_COVERAGE',
    ]);
  });

  it('treats empty-string variables as unset', () => {
    const config = loadConfig({
      REDIS_URL: '',
      PORT: '',
      MAX_UPLOAD_BYTES: '',
      JOB_RETENTION: '',
      WEBHOOK_RETRY_SCHEDULE: '',
      S3_ENDPOINT: '',
      PUBLIC_BASE_URL: '',
      API_KEYS: '',
      LOG_LEVEL: '',
      S3_ACCESS_KEY_ID: '',
    });

    expect(config).toEqual(loadConfig({}));
  });

  it('derives PUBLIC_BASE_URL from HOST and PORT when unset', () => {
    expect(loadConfig({ HOST: '0.0.0.0', PORT: '8080' }).api.publicBaseUrl).toBe('http://0.0.0.0:8080');
    expect(loadConfig({ HOST: '::1', PORT: '8080' }).api.publicBaseUrl).toBe('http://[::1]:8080');
  });

  it('prefers an explicit PUBLIC_BASE_URL and drops its trailing slash', () => {
    const config = loadConfig({ HOST: '0.0.0.0', PORT: '8080', PUBLIC_BASE_URL: 'https://cutout.example.com/' });

    expect(config.api.publicBaseUrl).toBe('https://cutout.example.com');
  });

  it('reads durations and sizes with their units', () => {
    const config = loadConfig({ JOB_RETENTION: '36h', MAX_UPLOAD_BYTES: '10MiB', WEBHOOK_RETRY_SCHEDULE: '0, 1s ,2m' });

    expect(config.jobRetentionMs).toBe(36 * 3_600_000);
    expect(config.api.maxUploadBytes).toBe(10 * 1024 * 1024);
    expect(config.webhooks.retryScheduleMs).toEqual([0, 1_000, 120_000]);
    expect(config.webhooks.maxAttempts).toBe(3);
  });
});

describe('loadConfig validation', () => {
  it('lists every bad variable in one error', () => {
    const error = configError({
      REDIS_URL: 'http://not-redis',
      PORT: 'eighty',
      MAX_UPLOAD_BYTES: 'lots',
      JOB_RETENTION: 'forever',
      LOG_LEVEL: 'loud',
    });

    expect(variablesNamed(error)).toEqual(['JOB_RETENTION', 'LOG_LEVEL', 'MAX_UPLOAD_BYTES', 'PORT', 'REDIS_URL']);
    for (const name of ['REDIS_URL', 'PORT', 'MAX_UPLOAD_BYTES', 'JOB_RETENTION', 'LOG_LEVEL'])
      expect(error.message).toContain(name);
    expect(error.message).toContain('"forever" is not a duration');
    expect(error.message).toContain('"lots" is not a size');
  });

  it('reports an empty webhook retry schedule alongside other bad variables', () => {
    expect(variablesNamed(configError({ WEBHOOK_RETRY_SCHEDULE: ' , ' }))).toEqual(['WEBHOOK_RETRY_SCHEDULE']);
    expect(variablesNamed(configError({ WEBHOOK_RETRY_SCHEDULE: ',', PORT: '70000' }))).toEqual([
      'PORT',
      'WEBHOOK_RETRY_SCHEDULE',
    ]);
  });

  it('rejects a retry schedule entry that is not a duration', () => {
    const error = configError({ WEBHOOK_RETRY_SCHEDULE: '0,5s,soon' });

    expect(error.problems).toEqual(['WEBHOOK_RETRY_SCHEDULE: "soon" is not a duration']);
  });

  it('rejects a zero upload limit', () => {
    expect(variablesNamed(configError({ MAX_UPLOAD_BYTES: '0' }))).toEqual(['MAX_UPLOAD_BYTES']);
  });

  it('reports a missing BYBYBG_API_KEY when a process needs one, even when other variables are bad', () => {
    expect(variablesNamed(configError({}, { bybybgKey: true }))).toEqual(['BYBYBG_API_KEY']);
    expect(variablesNamed(configError({ BYBYBG_API_KEY: ' , ' }, { bybybgKey: true }))).toEqual(['BYBYBG_API_KEY']);
    expect(variablesNamed(configError({ PORT: '-1', JOB_RETENTION: 'x' }, { bybybgKey: true }))).toEqual([
      'BYBYBG_API_KEY',
      'JOB_RETENTION',
      'PORT',
    ]);
  });

  it('does not require BYBYBG_API_KEY unless asked', () => {
    expect(loadConfig({}).bybybg.apiKeys).toEqual([]);
  });

  it('splits a comma-separated BYBYBG_API_KEY into several keys', () => {
    const config = loadConfig({ BYBYBG_API_KEY: ' key-one, key-two,,key-three ' }, { bybybgKey: true });

    expect(config.bybybg.apiKeys).toEqual(['key-one', 'key-two', 'key-three']);
  });
});

describe('API_KEYS', () => {
  it('parses tenant:key pairs', () => {
    const config = loadConfig({ API_KEYS: `acme:${KEY_A}, beta_2-x:${KEY_B}` });

    expect(config.api.bootstrapKeys).toEqual([
      { tenantId: 'acme', key: KEY_A },
      { tenantId: 'beta_2-x', key: KEY_B },
    ]);
  });

  it('keeps colons inside the key', () => {
    expect(loadConfig({ API_KEYS: `acme:${KEY_A}:more` }).api.bootstrapKeys).toEqual([
      { tenantId: 'acme', key: `${KEY_A}:more` },
    ]);
  });

  it.each([
    ['a key shorter than 24 characters', 'acme:short-key-123'],
    ['a tenant with a space', `bad tenant:${KEY_A}`],
    ['a tenant with a dot', `acme.io:${KEY_A}`],
    ['an empty tenant', `:${KEY_A}`],
    ['an entry without a colon', KEY_A],
    ['a tenant longer than 64 characters', `${'t'.repeat(65)}:${KEY_A}`],
  ])('rejects %s', (_case, value) => {
    expect(variablesNamed(configError({ API_KEYS: value }))).toEqual(['API_KEYS']);
  });

  it('rejects a bad entry even next to a good one, without echoing the key', () => {
    const error = configError({ API_KEYS: `acme:${KEY_A},beta:tooshort-secret` });

    expect(variablesNamed(error)).toEqual(['API_KEYS']);
    expect(error.message).not.toContain('tooshort-secret');
    expect(error.message).not.toContain(KEY_A);
  });
});

describe('webhook settings', () => {
  it('reads the SSRF allow-list and the secret rotation grace period', () => {
    const config = loadConfig({ WEBHOOK_ALLOW_PRIVATE: '127.0.0.0/8, ::1/128,10.1.2.3', WEBHOOK_SECRET_GRACE: '90m' });

    expect(config.webhooks.allowPrivate).toEqual(['127.0.0.0/8', '::1/128', '10.1.2.3']);
    expect(config.webhooks.secretGraceMs).toBe(90 * 60_000);
  });

  it('defaults to no private addresses and a 24 h grace period', () => {
    expect(loadConfig({}).webhooks).toMatchObject({ allowPrivate: [], secretGraceMs: 24 * 3_600_000 });
  });

  it('reads the per-endpoint concurrency, circuit threshold and redelivery allowance, 4, 5 and 60 by default', () => {
    expect(loadConfig({}).webhooks).toMatchObject({
      endpointConcurrency: 4,
      circuitThreshold: 5,
      redeliveriesPerMinute: 60,
    });
    const config = loadConfig({
      WEBHOOK_ENDPOINT_CONCURRENCY: '2',
      WEBHOOK_CIRCUIT_THRESHOLD: '10',
      WEBHOOK_REDELIVERIES_PER_MINUTE: '5',
    });
    expect(config.webhooks).toMatchObject({ endpointConcurrency: 2, circuitThreshold: 10, redeliveriesPerMinute: 5 });
  });

  it('refuses a per-endpoint concurrency or circuit threshold of 0', () => {
    expect(variablesNamed(configError({ WEBHOOK_ENDPOINT_CONCURRENCY: '0', WEBHOOK_CIRCUIT_THRESHOLD: '0' }))).toEqual([
      'WEBHOOK_CIRCUIT_THRESHOLD',
      'WEBHOOK_ENDPOINT_CONCURRENCY',
    ]);
  });

  it('rejects a bad CIDR in WEBHOOK_ALLOW_PRIVATE, naming it, alongside other bad variables', () => {
    const error = configError({ WEBHOOK_ALLOW_PRIVATE: '127.0.0.0/8,10.0.0.0/33', PORT: 'eighty' });

    expect(variablesNamed(error)).toEqual(['PORT', 'WEBHOOK_ALLOW_PRIVATE']);
    expect(error.message).toContain('invalid CIDR "10.0.0.0/33"');
  });
});

describe('ByByBG options', () => {
  it('forwards no option names by default and reads a comma-separated allow-list', () => {
    expect(loadConfig({}).bybybg.allowedOptions).toEqual([]);
    expect(loadConfig({ BYBYBG_ALLOWED_OPTIONS: 'size, format,,type' }).bybybg.allowedOptions).toEqual([
      'size',
      'format',
      'type',
    ]);
  });

  it('rejects a name that could never be an option, naming it', () => {
    const error = configError({ BYBYBG_ALLOWED_OPTIONS: 'size,File,file' });

    expect(variablesNamed(error)).toEqual(['BYBYBG_ALLOWED_OPTIONS']);
    expect(error.message).toContain('"File" is not an option name');
    expect(error.message).toContain('"file" is not an option name');
  });
});

describe('operations settings', () => {
  it('defaults the worker metrics port to 9464 and the API shutdown grace to 30 s', () => {
    const config = loadConfig({});

    expect(config.worker.metricsPort).toBe(9464);
    expect(config.api.shutdownGraceMs).toBe(30_000);
    expect(config.adminApiKey).toBeUndefined();
  });

  it('reads Redis Cluster seed nodes when the prefix has a hash tag', () => {
    const config = loadConfig({
      REDIS_CLUSTER_NODES: 'redis-a:7000, 10.0.0.2:7001,[::1]:7002',
      REDIS_PREFIX: '{cutout}',
    });

    expect(config.redis.clusterNodes).toEqual([
      { host: 'redis-a', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
  });

  it('refuses Redis Cluster nodes without a {hash-tagged} prefix, together with other problems', () => {
    for (const prefix of [undefined, 'cutout', 'cutout{}', 'cutout}{x']) {
      const error = configError({ REDIS_CLUSTER_NODES: 'redis-a:7000', REDIS_PREFIX: prefix, SHUTDOWN_GRACE: 'soon' });

      expect(variablesNamed(error), String(prefix)).toEqual(['REDIS_PREFIX', 'SHUTDOWN_GRACE']);
    }
  });

  it('rejects a cluster node that is not host:port', () => {
    expect(
      variablesNamed(configError({ REDIS_CLUSTER_NODES: 'redis-a:7000,redis-b', REDIS_PREFIX: '{cutout}' })),
    ).toEqual(['REDIS_CLUSTER_NODES']);
  });

  it('rejects a short ADMIN_API_KEY without echoing it', () => {
    const error = configError({ ADMIN_API_KEY: 'admin123' });

    expect(variablesNamed(error)).toEqual(['ADMIN_API_KEY']);
    expect(error.message).not.toContain('admin123');
  });
});

describe('TRUST_PROXY', () => {
  it('takes batches of 100,000 items, a queue window of 1,000, and upload URLs valid 1 h by default', () => {
    const config = loadConfig({});
    expect(config.api.maxBatchItems).toBe(100_000);
    expect(config.batches).toEqual({ queueWindow: 1_000, creationTimeoutMs: 30_000 });
    expect(config.uploads).toEqual({ urlTtlMs: 3_600_000 });
    expect(config.worker.maintenanceIntervalMs).toBe(10_000);
  });

  it('refuses an upload URL lifetime past 7 days, a creation timeout under 1 s and a window of 1, together', () => {
    expect(
      variablesNamed(configError({ UPLOAD_URL_TTL: '8d', BATCH_CREATION_TIMEOUT: '500ms', BATCH_QUEUE_WINDOW: '1' })),
    ).toEqual(['BATCH_CREATION_TIMEOUT', 'BATCH_QUEUE_WINDOW', 'UPLOAD_URL_TTL']);
  });

  it('trusts no proxy by default', () => {
    expect(loadConfig({}).api.trustProxy).toBe(false);
  });

  it('reads true, a hop count, or a list of addresses, CIDRs and named ranges', () => {
    expect(loadConfig({ TRUST_PROXY: 'true' }).api.trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).api.trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.0.2.1,loopback,::1' }).api.trustProxy).toEqual([
      '10.0.0.0/8',
      '192.0.2.1',
      'loopback',
      '::1',
    ]);
  });

  it('refuses an entry that is not an address, a CIDR or a named range', () => {
    expect(variablesNamed(configError({ TRUST_PROXY: '10.0.0.0/8,proxy.internal' }))).toEqual(['TRUST_PROXY']);
  });
});
