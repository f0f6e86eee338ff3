import type { ImageFetcher } from '@cutout/shared/images';
import type { Config, Logger, Metrics, Redis, Services } from '@cutout/shared/infra';
import type { JobStatusReader } from '@cutout/shared/stores';
import type { Guards } from './contract/register.ts';
import type { ContractSettings } from './contract/jobs.ts';
import type { Idempotency } from './http/idempotency.ts';
import type { JobWaiter } from './jobs/waiter.ts';

/** The backing services (all but the raw S3 client) plus what only the API needs. */
export interface AppDeps extends Omit<Services, 's3' | 'close'> {
  config: Config;
  /**
   * A connection without auto-pipelining, for the commands a request makes one at a time
   * (the per-key allowance, the status poll); `redis` otherwise.
   */
  directRedis?: Redis;
  /** A status poll's allowance, record and queue hold, in one command. */
  jobStatus: JobStatusReader;
  idempotency: Idempotency;
  jobWaiter: JobWaiter;
  images: ImageFetcher;
  log: Logger;
  /** The process's registry; one of its own when absent (tests build several apps per process). */
  metrics?: Metrics;
}

/** What every route plugin is registered with: the services, the scope guards, and what its operations' schemas depend on. */
export interface RouteOptions {
  deps: AppDeps;
  guards: Guards;
  contract: ContractSettings;
}
