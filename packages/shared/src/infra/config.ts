import { isIP } from 'node:net';
import { z } from 'zod';
import { parseBytes, parseDuration } from './durations.ts';
import { isWellFormedApiKey } from '../../../../apps/api/src/auth/api-keys.ts';
import { parseCidrList } from '../security/url-guard.ts';
import { isOptionName } from '../security/upstream-options.ts';
import { DEFAULT_QUALITY_THRESHOLDS, type QualityThresholds } from '../views/quality.ts';

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined)
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (e.g. 500ms, 30s, 5m, 2h, 7d)` });
      return ms ?? 0;
    });

const bytes = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const value = parseBytes(text);
      if (value === undefined || value <= 0)
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a size (e.g. 25MB, 512KiB, 1048576)` });
      return value ?? 0;
    });

const int = (fallback: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(fallback);

const share = (fallback: number) => z.coerce.number().min(0).max(1).default(fallback);

const optionalText = z.string().trim().min(1).optional().catch(undefined);

const splitList = (text: string) =>
  text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

const list = z
  .string()
  .default('')
  .transform((text) => splitList(text));

const apiKeyPairs = list.transform((pairs, ctx) =>
  pairs.map((pair) => {
    const colon = pair.indexOf(':');
    const tenantId = pair.slice(0, colon);
    const key = pair.slice(colon + 1);
    // A ck_live_ key with a bad checksum could never authenticate: refuse it here, loudly.
    if (colon < 1 || !/^[A-Za-z0-9_-]{1,64}$/.test(tenantId) || !isWellFormedApiKey(key)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'each entry must be tenant:key, tenant of [A-Za-z0-9_-], key of 24 characters or more (a ck_live_ key copied whole)',
      });
    }
    return { tenantId, key };
  }),
);

const retrySchedule = z
  .string()
  .default('0,5s,5m,30m,2h,5h,10h,10h')
  .transform((text, ctx) => {
    const parts = splitList(text);
    // Checked inside the schema so it is reported together with every other bad variable.
    if (parts.length === 0) ctx.addIssue({ code: 'custom', message: 'needs at least one delay' });
    return parts.map((part) => {
      const ms = parseDuration(part);
      if (ms === undefined) ctx.addIssue({ code: 'custom', message: `"${part}" is not a duration` });
      return ms ?? 0;
    });
  });

/** CIDRs the SSRF guard lets through; a typo here would silently block (or open) webhooks. */
const cidrList = list.transform((entries, ctx) => {
  for (const entry of entries) {
    try {
      parseCidrList([entry]);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
    }
  }
  return entries;
});

/** Option names clients may forward to ByByBG; a typo here would silently refuse them all. */
const optionNames = list.transform((names, ctx) => {
  for (const name of names)
    if (!isOptionName(name))
      ctx.addIssue({ code: 'custom', message: `"${name}" is not an option name (lower_snake_case, not "file")` });
  return names;
});

const url = z.url({ protocol: /^https?$/ });

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * Which proxies may name the client in X-Forwarded-For: `true` (any), a number of hops, or
 * addresses and CIDRs (and proxy-addr's `loopback`, `linklocal`, `uniquelocal`). Unset: none,
 * so a client cannot pick the address its failed authentications are counted against.
 */
const trustProxy = z
  .string()
  .default('false')
  .transform((text, ctx): boolean | number | string[] => {
    const value = text.trim();
    if (value === 'true' || value === 'false') return value === 'true';
    if (/^\d+$/.test(value)) return Number(value);
    const entries = splitList(value);
    for (const entry of entries) {
      if (PROXY_NAMES.has(entry) || isIP(entry)) continue;
      try {
        parseCidrList([entry]);
      } catch {
        ctx.addIssue({
          code: 'custom',
          message: `"${entry}" is not true, false, a hop count, an address, a CIDR or loopback/linklocal/uniquelocal`,
        });
      }
    }
    return entries;
  });

/** `host:port,host:port`: the seed nodes of a Redis Cluster (ioredis discovers the rest). */
const clusterNodes = list.transform((entries, ctx) =>
  entries.map((entry) => {
    const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) ctx.addIssue({ code: 'custom', message: `"${entry}" is not host:port` });
    return { host: (match?.[1] ?? '').replace(/^\[|\]$/g, ''), port };
  }),
);

/** Redis Cluster hashes only the part of a key between the first `{` and the next `}`. */
const hasHashTag = (prefix: string): boolean => /^[^{]*\{[^}]+\}/.test(prefix);

/** Every environment variable Cutout reads, with its default. `.env.example` mirrors it. */
const envSchema = z.object({
  REDIS_URL: z
    .string()
    .default('redis://127.0.0.1:6379')
    .pipe(z.url({ protocol: /^rediss?$/ })),
  REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:{}_-]+$/)
    .default('cutout'),
  REDIS_CLUSTER_NODES: clusterNodes,
  S3_ENDPOINT: url.optional().or(z.literal('').transform(() => undefined)),
  S3_PUBLIC_ENDPOINT: url.optional(),
  S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/)
    .default('cutout'),
  S3_REGION: z.string().default('us-east-1'),
  S3_ACCESS_KEY_ID: optionalText,
  S3_SECRET_ACCESS_KEY: optionalText,
  BYBYBG_API_URL: url.default('https://api.bybybg.com'),
  BYBYBG_API_KEY: list,
  BYBYBG_RATE_LIMIT: z.coerce.number().positive().optional(),
  BYBYBG_TIMEOUT: duration('60s'),
  BYBYBG_MAX_ATTEMPTS: int(5, 1, 50),
  BYBYBG_RETRY_DELAY: duration('1s'),
  BYBYBG_RATE_LIMIT_BUDGET: duration('1h'),
  BYBYBG_KEY_PROBE_INTERVAL: duration('1m'),
  // None by default: ByByBG documents no options, and some change the price of a call or make it fetch a URL.
  BYBYBG_ALLOWED_OPTIONS: optionNames,
  BYBYBG_CREDIT_PROBE_INTERVAL: duration('1m').refine((ms) => ms >= 100, 'must be at least 100ms'),
  BYBYBG_OUT_OF_CREDIT_BUDGET: duration('24h').refine((ms) => ms >= 1_000, 'must be at least 1s'),
  WORKER_CONCURRENCY: int(8, 1, 500),
  WEBHOOK_CONCURRENCY: int(16, 1, 500),
  WORKER_LOCK_DURATION: duration('30s'),
  WORKER_STALLED_INTERVAL: duration('30s'),
  WORKER_SHUTDOWN_TIMEOUT: duration('30s'),
  WORKER_METRICS_PORT: int(9464, 0, 65535),
  THUMBNAIL_SIZE: int(320, 0, 1024),
  RENDITION_CONCURRENCY: int(2, 1, 64),
  QUALITY_EMPTY_COVERAGE: share(DEFAULT_QUALITY_THRESHOLDS.emptyBelow),
  QUALITY_UNREMOVED_COVERAGE: share(DEFAULT_QUALITY_THRESHOLDS.unremovedFrom),
  QUALITY_EDGE_CONTACT: share(DEFAULT_QUALITY_THRESHOLDS.edgeContactFrom),
  QUALITY_SEMITRANSPARENT_SHARE: share(DEFAULT_QUALITY_THRESHOLDS.semitransparentFrom),
  QUALITY_TINY_COVERAGE: share(DEFAULT_QUALITY_THRESHOLDS.tinyBelow),
  SHUTDOWN_GRACE: duration('30s'),
  PORT: int(3000, 0, 65535),
  HOST: z.string().default('127.0.0.1'),
  PUBLIC_BASE_URL: url.optional(),
  API_KEYS: apiKeyPairs,
  API_RATE_LIMIT_PER_MINUTE: int(600, 1, 1_000_000),
  REVIEW_RATE_LIMIT_PER_MINUTE: int(3_000, 1, 1_000_000),
  AUTH_FAILURE_LIMIT_PER_MINUTE: int(300, 1, 1_000_000),
  UPLOAD_CONCURRENCY: int(16, 1, 10_000),
  API_KEY_CACHE_TTL: duration('10s'),
  TRUST_PROXY: trustProxy,
  REVIEW_STREAMS_PER_LINK: int(4, 1, 1_000),
  REVIEW_STREAMS_PER_PROCESS: int(1_000, 1, 100_000),
  REVIEW_STREAM_MAX_AGE: duration('15m').refine((ms) => ms >= 1_000, 'must be at least 1s'),
  MAX_UPLOAD_BYTES: bytes('25MB'),
  MAX_IMAGE_PIXELS: int(50_000_000, 1, 1_000_000_000),
  MAX_BATCH_ITEMS: int(100_000, 1, 1_000_000),
  // Fits 100,000 rows of 500 bytes (a long URL, a ref and a few metadata columns); read as a stream.
  MAX_MANIFEST_BYTES: bytes('50MB'),
  // Items of one batch waiting in the queue at once; the rest wait as records (batch-feeder.ts).
  BATCH_QUEUE_WINDOW: int(1_000, 2, 100_000),
  BATCH_CREATION_TIMEOUT: duration('30s').refine((ms) => ms >= 1_000, 'must be at least 1s'),
  UPLOAD_URL_TTL: duration('1h').refine((ms) => ms >= 1_000 && ms <= 7 * 86_400_000, 'must be between 1s and 7d'),
  MAINTENANCE_INTERVAL: duration('10s').refine((ms) => ms >= 100, 'must be at least 100ms'),
  RESULT_URL_TTL: duration('1h'),
  // Signs review links; without it the API keeps a random one in Redis, shared by every API process.
  REVIEW_LINK_SECRET: z.string().trim().min(32, 'must be 32 characters or more').optional(),
  REVIEW_LINK_TTL: duration('24h').refine((ms) => ms >= 60_000 && ms <= 30 * 86_400_000, 'must be between 1m and 30d'),
  IMAGE_URL_TIMEOUT: duration('30s'),
  WEBHOOK_RETRY_SCHEDULE: retrySchedule,
  WEBHOOK_TIMEOUT: duration('15s'),
  WEBHOOK_ALLOW_PRIVATE: cidrList,
  WEBHOOK_SECRET_GRACE: duration('24h'),
  WEBHOOK_ENDPOINT_CONCURRENCY: int(4, 1, 100),
  WEBHOOK_CIRCUIT_THRESHOLD: int(5, 1, 1000),
  WEBHOOK_REDELIVERIES_PER_MINUTE: int(60, 1, 1_000_000),
  JOB_RETENTION: duration('7d'),
  // Guards the queue dashboard: as long as an API key, so it cannot be guessed.
  ADMIN_API_KEY: z.string().trim().min(24, 'must be 24 characters or more').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

type Env = z.output<typeof envSchema>;

export interface Config {
  /** `clusterNodes` empty: one Redis (or Sentinel behind REDIS_URL); else a Redis Cluster. */
  redis: { url: string; prefix: string; clusterNodes: { host: string; port: number }[] };
  s3: {
    endpoint?: string;
    publicEndpoint?: string;
    bucket: string;
    region: string;
    accessKeyId?: string;
    secretAccessKey?: string;
  };
  bybybg: {
    apiUrl: string;
    apiKeys: string[];
    rateLimitPerSecond?: number;
    timeoutMs: number;
    maxAttempts: number;
    retryDelayMs: number;
    rateLimitBudgetMs: number;
    keyProbeIntervalMs: number;
    /** `options` names clients may forward (BYBYBG_ALLOWED_OPTIONS); empty: none. */
    allowedOptions: string[];
    /** While the account is out of credit (402): one probe call per interval, and how long a job may wait. */
    creditProbeIntervalMs: number;
    outOfCreditBudgetMs: number;
  };
  worker: {
    concurrency: number;
    webhookConcurrency: number;
    lockDurationMs: number;
    stalledIntervalMs: number;
    shutdownTimeoutMs: number;
    /** Port of the worker's own /metrics and /healthz server; 0 picks a free one. */
    metricsPort: number;
    /** Longest side of the WebP thumbnails of originals and cutouts, in px; 0: no thumbnails. */
    thumbnailSize: number;
    /** When a cutout gets each automatic quality flag. */
    quality: QualityThresholds;
    /** Cutouts one worker process decodes for renditions at once. */
    renditionConcurrency: number;
    /** How often each worker sweeps: abandoned batch creations, batches to feed, expired uploads. */
    maintenanceIntervalMs: number;
  };
  batches: {
    /** Items of one batch in the queue at once (BATCH_QUEUE_WINDOW). */
    queueWindow: number;
    /** A creation that wrote nothing and renewed nothing for this long counts as dead (BATCH_CREATION_TIMEOUT). */
    creationTimeoutMs: number;
  };
  uploads: {
    /** How long a direct upload's PUT URLs are valid, and the upload usable for a batch (UPLOAD_URL_TTL). */
    urlTtlMs: number;
  };
  api: {
    port: number;
    host: string;
    publicBaseUrl: string;
    shutdownGraceMs: number;
    bootstrapKeys: { tenantId: string; key: string }[];
    rateLimitPerMinute: number;
    maxUploadBytes: number;
    maxImagePixels: number;
    maxBatchItems: number;
    resultUrlTtlMs: number;
    imageUrlTimeoutMs: number;
    /** Largest CSV manifest of a batch (MAX_MANIFEST_BYTES). */
    maxManifestBytes: number;
    /** Review links: the signing secret (else one kept in Redis) and the default lifetime. */
    reviewLinkSecret?: string;
    reviewLinkTtlMs: number;
    /** Requests per minute one review link may make (a page view is about a hundred). */
    reviewRateLimitPerMinute: number;
    /** Failed authentications per minute one client address may make before it gets 429. */
    authFailureLimitPerMinute: number;
    /** Uploads streaming to S3 at once per API process (each holds about one 5 MiB part); the rest wait. */
    uploadConcurrency: number;
    /** How long an API process keeps a key it looked up (revocations drop it at once); 0: no cache. */
    apiKeyCacheTtlMs: number;
    /** fastify's `trustProxy`: who may set X-Forwarded-For. */
    trustProxy: boolean | number | string[];
    /** Open review progress streams: per link, per API process, and how long one lives. */
    reviewStreams: { perLink: number; perProcess: number; maxAgeMs: number };
  };
  webhooks: {
    retryScheduleMs: number[];
    /** Attempts per delivery: one per entry of the retry schedule. */
    maxAttempts: number;
    timeoutMs: number;
    allowPrivate: string[];
    secretGraceMs: number;
    /** Deliveries in flight to one endpoint (a tenant's receiver origin) across every worker. */
    endpointConcurrency: number;
    /** Consecutive timeouts, connection failures or 5xx answers that open an endpoint's circuit. */
    circuitThreshold: number;
    /** Redeliver and recover calls per tenant per minute, on top of the per-key request limit. */
    redeliveriesPerMinute: number;
  };
  jobRetentionMs: number;
  adminApiKey?: string;
  logLevel: string;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** What a process needs beyond the defaults; checked together with everything else. */
export interface ConfigNeeds {
  bybybgKey?: boolean;
}

/** Validates the environment once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>, needs: ConfigNeeds = {}): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = envSchema.safeParse(present);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  if (present.REDIS_CLUSTER_NODES?.trim() && !hasHashTag(present.REDIS_PREFIX ?? 'cutout')) {
    // Without one slot for all of a queue's keys, BullMQ's scripts fail with CROSSSLOT.
    problems.push('REDIS_PREFIX: must contain a {hash tag}, e.g. {cutout}, when REDIS_CLUSTER_NODES is set');
  }
  if (needs.bybybgKey && !present.BYBYBG_API_KEY?.split(',').some((key) => key.trim())) {
    problems.push('BYBYBG_API_KEY: required (one key, or several comma-separated for rotation)');
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  return toConfig(parsed.data);
}

function toConfig(env: Env): Config {
  return {
    redis: { url: env.REDIS_URL, prefix: env.REDIS_PREFIX, clusterNodes: env.REDIS_CLUSTER_NODES },
    s3: {
      endpoint: env.S3_ENDPOINT,
      publicEndpoint: env.S3_PUBLIC_ENDPOINT,
      bucket: env.S3_BUCKET,
      region: env.S3_REGION,
      accessKeyId: env.S3_ACCESS_KEY_ID,
      secretAccessKey: env.S3_SECRET_ACCESS_KEY,
    },
    bybybg: {
      apiUrl: env.BYBYBG_API_URL.replace(/\/+$/, ''),
      apiKeys: env.BYBYBG_API_KEY,
      rateLimitPerSecond: env.BYBYBG_RATE_LIMIT,
      timeoutMs: env.BYBYBG_TIMEOUT,
      maxAttempts: env.BYBYBG_MAX_ATTEMPTS,
      retryDelayMs: env.BYBYBG_RETRY_DELAY,
      rateLimitBudgetMs: env.BYBYBG_RATE_LIMIT_BUDGET,
      keyProbeIntervalMs: env.BYBYBG_KEY_PROBE_INTERVAL,
      allowedOptions: env.BYBYBG_ALLOWED_OPTIONS,
      creditProbeIntervalMs: env.BYBYBG_CREDIT_PROBE_INTERVAL,
      outOfCreditBudgetMs: env.BYBYBG_OUT_OF_CREDIT_BUDGET,
    },
    worker: {
      concurrency: env.WORKER_CONCURRENCY,
      webhookConcurrency: env.WEBHOOK_CONCURRENCY,
      lockDurationMs: env.WORKER_LOCK_DURATION,
      stalledIntervalMs: env.WORKER_STALLED_INTERVAL,
      shutdownTimeoutMs: env.WORKER_SHUTDOWN_TIMEOUT,
      metricsPort: env.WORKER_METRICS_PORT,
      thumbnailSize: env.THUMBNAIL_SIZE,
      renditionConcurrency: env.RENDITION_CONCURRENCY,
      maintenanceIntervalMs: env.MAINTENANCE_INTERVAL,
      quality: {
        emptyBelow: env.QUALITY_EMPTY_COVERAGE,
        unremovedFrom: env.QUALITY_UNREMOVED_COVERAGE,
        edgeContactFrom: env.QUALITY_EDGE_CONTACT,
        semitransparentFrom: env.QUALITY_SEMITRANSPARENT_SHARE,
        tinyBelow: env.QUALITY_TINY_COVERAGE,
      },
    },
    api: {
      port: env.PORT,
      host: env.HOST,
      shutdownGraceMs: env.SHUTDOWN_GRACE,
      publicBaseUrl: (
        env.PUBLIC_BASE_URL ?? `http://${env.HOST.includes(':') ? `[${env.HOST}]` : env.HOST}:${env.PORT}`
      ).replace(/\/+$/, ''),
      bootstrapKeys: env.API_KEYS,
      rateLimitPerMinute: env.API_RATE_LIMIT_PER_MINUTE,
      maxUploadBytes: env.MAX_UPLOAD_BYTES,
      maxImagePixels: env.MAX_IMAGE_PIXELS,
      maxBatchItems: env.MAX_BATCH_ITEMS,
      maxManifestBytes: env.MAX_MANIFEST_BYTES,
      resultUrlTtlMs: env.RESULT_URL_TTL,
      imageUrlTimeoutMs: env.IMAGE_URL_TIMEOUT,
      reviewLinkSecret: env.REVIEW_LINK_SECRET,
      reviewLinkTtlMs: env.REVIEW_LINK_TTL,
      reviewRateLimitPerMinute: env.REVIEW_RATE_LIMIT_PER_MINUTE,
      authFailureLimitPerMinute: env.AUTH_FAILURE_LIMIT_PER_MINUTE,
      trustProxy: env.TRUST_PROXY,
      apiKeyCacheTtlMs: env.API_KEY_CACHE_TTL,
      uploadConcurrency: env.UPLOAD_CONCURRENCY,
      reviewStreams: {
        perLink: env.REVIEW_STREAMS_PER_LINK,
        perProcess: env.REVIEW_STREAMS_PER_PROCESS,
        maxAgeMs: env.REVIEW_STREAM_MAX_AGE,
      },
    },
    webhooks: {
      retryScheduleMs: env.WEBHOOK_RETRY_SCHEDULE,
      maxAttempts: env.WEBHOOK_RETRY_SCHEDULE.length,
      timeoutMs: env.WEBHOOK_TIMEOUT,
      allowPrivate: env.WEBHOOK_ALLOW_PRIVATE,
      secretGraceMs: env.WEBHOOK_SECRET_GRACE,
      endpointConcurrency: env.WEBHOOK_ENDPOINT_CONCURRENCY,
      circuitThreshold: env.WEBHOOK_CIRCUIT_THRESHOLD,
      redeliveriesPerMinute: env.WEBHOOK_REDELIVERIES_PER_MINUTE,
    },
    batches: { queueWindow: env.BATCH_QUEUE_WINDOW, creationTimeoutMs: env.BATCH_CREATION_TIMEOUT },
    uploads: { urlTtlMs: env.UPLOAD_URL_TTL },
    jobRetentionMs: env.JOB_RETENTION,
    adminApiKey: env.ADMIN_API_KEY,
    logLevel: env.LOG_LEVEL,
  };
}
