import type { FastifyInstance } from 'fastify';
import { openServices, type Config, type Logger, type Services } from '@cutout/shared';
import { buildApp } from './app.ts';

export interface RunningApi { app: FastifyInstance; url: string; services: Services; close(): Promise<void> }

/** Connects, registers bootstrap keys, listens. Closing stops accepting, drains, disconnects. */
export async function startApi(config: Config, log: Logger): Promise<RunningApi> {
  const services = await openServices(config, { name: 'cutout-api', log });
  await services.tenants.bootstrapKeys(config.api.bootstrapKeys);
  await services.storage.ensureBucket().catch((error: unknown) => log.warn({ err: error, bucket: config.s3.bucket }, 'S3 bucket not reachable yet'));
  const app = await buildApp({ config, log, ...services });
  const address = await app.listen({ port: config.api.port, host: config.api.host });
  return {
    app,
    url: address,
    services,
    async close() {
      await app.close();
      await services.close();
    },
  };
}
