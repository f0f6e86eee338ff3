import type { ImageFetcher } from '@cutout/shared/images';
import type { Config, Logger, Metrics, Services } from '@cutout/shared/infra';
import type { Guards } from './contract/register.ts';
import type { ContractSettings } from './contract/jobs.ts';
import type { Idempotency } from './http/idempotency.ts';
import type { JobWaiter } from './jobs/waiter.ts';

/** The backing services (all but the raw S3 client) plus what only the API needs. */
export interface AppDeps extends Omit<Services, 's3' | 'close'> {
  config: Config;
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
