import type { FastifyRequest } from 'fastify';
import type { BatchRecord, BatchStore, JobRecord, JobStore } from '@cutout/shared/stores';
import { tenantOf } from '../auth/authenticate.ts';
import { notFound } from './errors.ts';

/** Any request with an `:id` in its path, whatever its schema types. */
type WithId = Pick<FastifyRequest, 'auth'> & { params: { id: string } };

/** The caller's job, or 404: another tenant's job is indistinguishable from a missing one. */
export async function ownJob(jobs: JobStore, request: WithId): Promise<JobRecord> {
  const record = await jobs.get(request.params.id);
  if (!record || record.tenantId !== tenantOf(request)) throw notFound('Job');
  return record;
}

/** The caller's batch, or 404, for the same reason. */
export async function ownBatch(batches: BatchStore, request: WithId): Promise<BatchRecord> {
  const batch = await batches.get(request.params.id);
  if (!batch || batch.tenantId !== tenantOf(request)) throw notFound('Batch');
  return batch;
}
