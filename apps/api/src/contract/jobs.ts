import { z } from 'zod';
import { JOB_STATUSES, jobViewSchema } from '@cutout/shared/views';
import {
  batchIdParams,
  idempotencyKeyHeader,
  jobIdParams,
  listOf,
  pageQuery,
  preferHeader,
  redirect,
} from './common.ts';
import { fieldSchemas, type FieldRules } from './fields.ts';
import type { OperationSpec } from './operation.ts';

/** What the operations' schemas depend on: the field rules and the limits they document. */
export interface ContractSettings {
  rules: FieldRules;
  maxUploadBytes: number;
  maxImagePixels: number;
  maxBatchItems: number;
  maxManifestBytes: number;
}

export const jobListSchema = listOf(jobViewSchema).meta({ id: 'JobList' });

const submissionHeaders = z.object({ 'idempotency-key': idempotencyKeyHeader, prefer: preferHeader });

/** The operations on jobs: submit, list, read, cancel, fetch the result and renditions, rerun. */
export function jobOperations({ rules, maxUploadBytes, maxImagePixels }: ContractSettings) {
  const { json, form } = fieldSchemas(rules);
  const submissionJson = z
    .strictObject({
      image_url: z
        .string({ error: 'The JSON body needs an "image_url" string' })
        .describe('A public http(s) URL of the image; Cutout fetches it through the address guard'),
      webhook_url: json.webhook_url.optional(),
      metadata: json.metadata.optional(),
      options: json.options.optional(),
      renditions: json.renditions.optional(),
    })
    .meta({ id: 'JobSubmission' });
  const submissionForm = z.object({
    file: z
      .string()
      .meta({ format: 'binary' })
      .optional()
      .describe(
        `JPEG, PNG or WebP (recognised by its bytes), at most ${maxUploadBytes} bytes and ${maxImagePixels} pixels. Send the other fields before it: a bad field then costs no upload`,
      ),
    image_url: z.string().optional().describe('Instead of file: a public http(s) URL of the image'),
    webhook_url: form.webhook_url.optional().describe('A public http(s) URL that receives job.succeeded / job.failed'),
    metadata: form.metadata.optional(),
    options: form.options.optional(),
    renditions: form.renditions.optional(),
  });

  return {
    createJob: {
      method: 'POST',
      url: '/v1/jobs',
      operationId: 'createJob',
      tags: ['jobs'],
      scope: 'jobs:write',
      summary: 'Submit an image',
      description:
        'Multipart with the image in `file`, or `image_url` (form field or JSON). The original is in S3 and the job queued before the answer. `Prefer: wait=N` waits for the result.',
      headers: submissionHeaders,
      body: submissionJson,
      requestBody: { required: true, content: { 'multipart/form-data': submissionForm } },
      responses: {
        200: {
          description: 'The job ended within Prefer: wait',
          json: jobViewSchema,
          headers: ['location', 'preference-applied', 'idempotent-replayed'],
        },
        202: {
          description: 'Accepted and queued; Location names the job',
          json: jobViewSchema,
          headers: ['location', 'preference-applied', 'idempotent-replayed'],
        },
      },
      errors: [
        'missing_file',
        'empty_file',
        'too_many_files',
        'too_many_parts',
        'too_many_fields',
        'unknown_field',
        'duplicate_field',
        'ambiguous_image',
        'invalid_multipart',
        'invalid_idempotency_key',
        'invalid_request',
        'idempotency_key_reused',
        'idempotency_request_in_progress',
        'file_too_large',
        'field_too_large',
        'payload_too_large',
        'unsupported_media_type',
        'invalid_webhook_url',
        'invalid_metadata',
        'invalid_options',
        'invalid_renditions',
        'invalid_image',
        'image_too_large',
        'image_truncated',
        'invalid_image_url',
        'image_url_unreachable',
      ],
    },
    listJobs: {
      method: 'GET',
      url: '/v1/jobs',
      operationId: 'listJobs',
      tags: ['jobs'],
      scope: 'jobs:read',
      summary: "This tenant's jobs, newest first",
      querystring: z.object({
        status: z.enum(JOB_STATUSES, { error: `status must be one of ${JOB_STATUSES.join(', ')}` }).optional(),
        batch_id: batchIdParams.shape.id.optional().describe("Only this batch's jobs, in submission order"),
        ...pageQuery,
      }),
      responses: { 200: { description: 'A page of jobs', json: jobListSchema } },
      errors: ['invalid_request', 'invalid_cursor', 'not_found'],
    },
    getJob: {
      method: 'GET',
      url: '/v1/jobs/:id',
      operationId: 'getJob',
      tags: ['jobs'],
      scope: 'jobs:read',
      summary: 'Status of a job',
      description:
        'A queued job says why it waits in `waiting_reason`. Poll with If-None-Match and get 304 while nothing changed.',
      params: jobIdParams,
      headers: z.object({
        prefer: preferHeader,
        'if-none-match': z.string().max(128).optional().describe('The ETag of an earlier answer'),
      }),
      responses: {
        200: { description: 'The job', json: jobViewSchema, headers: ['etag', 'cache-control', 'preference-applied'] },
        304: { description: 'Unchanged since the ETag sent in If-None-Match', headers: ['etag', 'cache-control'] },
      },
      errors: ['not_found'],
    },
    cancelJob: {
      method: 'DELETE',
      url: '/v1/jobs/:id',
      operationId: 'cancelJob',
      tags: ['jobs'],
      scope: 'jobs:write',
      summary: 'Cancel a job that has not started',
      params: jobIdParams,
      responses: { 200: { description: 'The canceled job', json: jobViewSchema } },
      errors: ['not_found', 'job_already_started', 'job_finished'],
    },
    getJobResult: {
      method: 'GET',
      url: '/v1/jobs/:id/result',
      operationId: 'getJobResult',
      tags: ['jobs'],
      scope: 'jobs:read',
      summary: 'Redirect to the result',
      params: jobIdParams,
      responses: { 302: redirect('Location is a fresh presigned URL of the transparent PNG') },
      errors: ['not_found', 'result_not_ready'],
    },
    getJobRendition: {
      method: 'GET',
      url: '/v1/jobs/:id/renditions/:name',
      operationId: 'getJobRendition',
      tags: ['jobs'],
      scope: 'jobs:read',
      summary: 'Redirect to one rendition',
      params: jobIdParams.extend({ name: z.string().max(64).describe('The rendition name given at submission') }),
      responses: { 302: redirect('Location is a fresh presigned URL of the rendition') },
      errors: ['not_found', 'result_not_ready', 'rendition_failed'],
    },
    rerunJob: {
      method: 'POST',
      url: '/v1/jobs/:id/rerun',
      operationId: 'rerunJob',
      tags: ['jobs'],
      scope: 'jobs:write',
      summary: "A new job on a copy of this job's original, e.g. with other options",
      description:
        "Each field defaults to the original job's. The new job has `rerun_of`. An earlier result with the same options is reused (credits_saved), whatever the renditions, unless a reviewer flagged it.",
      params: jobIdParams,
      body: z
        .strictObject({
          options: json.options.optional(),
          renditions: json.renditions.optional(),
          webhook_url: json.webhook_url.optional(),
          metadata: json.metadata.optional(),
        })
        .nullish(),
      responses: { 202: { description: 'The new job; Location names it', json: jobViewSchema, headers: ['location'] } },
      errors: [
        'not_found',
        'invalid_request',
        'unknown_field',
        'unsupported_media_type',
        'job_not_finished',
        'original_missing',
        'invalid_options',
        'invalid_renditions',
        'invalid_webhook_url',
        'invalid_metadata',
      ],
    },
  } as const satisfies Record<string, OperationSpec>;
}
