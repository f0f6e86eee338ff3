import { z } from 'zod';
import { idParams, type OperationSpec } from './operation.ts';
import type { ContractSettings } from './jobs.ts';

const uploadIdParams = idParams('upload', /^upl_[0-9A-Za-z]{24}$/, 'upl_5Rk8Wm2Qx7Lz3Tb9Vc4Np1Hd');

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;

const declaredFile = (maxUploadBytes: number) =>
  z
    .object({
      name: z
        .string()
        .min(1)
        .max(1024)
        .describe("The file name; it becomes the item's client_ref (never part of a storage key)"),
      content_type: z.enum(IMAGE_TYPES),
      bytes: z
        .int()
        .min(1)
        .max(maxUploadBytes)
        .describe(`The exact size; at most ${maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`),
    })
    .meta({ id: 'DeclaredFile' });

const uploadFileSchema = z
  .object({
    name: z.string(),
    content_type: z.enum(IMAGE_TYPES),
    bytes: z.int(),
    uploaded: z.boolean().optional().describe('GET only: an object of the declared size is in S3'),
    put_url: z.string().optional().describe('PUT the file here (while the upload is open, for files not uploaded yet)'),
    headers: z
      .record(z.string(), z.string())
      .optional()
      .describe('Send exactly these headers with the PUT: Content-Type and Content-Length are signed'),
  })
  .meta({ id: 'UploadFile' });

const uploadSchema = z
  .object({
    object: z.literal('upload'),
    id: z.string(),
    status: z
      .enum(['open', 'used', 'expired'])
      .describe('open: files may be PUT and a batch made; used: a batch was made from it; expired: past expires_at'),
    batch_id: z.string().nullable().describe('The batch made from it'),
    created_at: z.iso.datetime(),
    expires_at: z.iso
      .datetime()
      .describe('The PUT URLs stop working then (UPLOAD_URL_TTL); an unused upload is deleted after it'),
    files: z.array(uploadFileSchema),
  })
  .meta({ id: 'Upload' });

/** Direct uploads: files PUT straight to S3, then made a batch with `POST /v1/batches {"upload_id"}`. */
export function uploadOperations({ maxBatchItems, maxManifestBytes, maxUploadBytes }: ContractSettings) {
  return {
    createUpload: {
      method: 'POST',
      url: '/v1/uploads',
      operationId: 'createUpload',
      tags: ['uploads'],
      scope: 'jobs:write',
      summary: 'Declare files to upload straight to S3; one presigned PUT URL per file',
      description: `Up to ${maxBatchItems} files (a body of at most ${maxManifestBytes} bytes, read as it streams in). PUT each file to its put_url with exactly its headers before expires_at, then POST /v1/batches {"upload_id"}. Keys are chosen by Cutout, never from file names; unused uploads are deleted once they expire.`,
      requestBody: {
        required: true,
        content: {
          'application/json': z
            .strictObject({ files: z.array(declaredFile(maxUploadBytes)).min(1).max(maxBatchItems) })
            .meta({ id: 'UploadRequest' }),
        },
      },
      responses: {
        201: {
          description: 'The upload with a PUT URL per file; Location names it',
          json: uploadSchema,
          headers: ['location'],
        },
      },
      errors: [
        'invalid_request',
        'unknown_field',
        'duplicate_field',
        'empty_file',
        'too_many_items',
        'file_too_large',
        'payload_too_large',
        'unsupported_media_type',
      ],
    },
    getUpload: {
      method: 'GET',
      url: '/v1/uploads/:id',
      operationId: 'getUpload',
      tags: ['uploads'],
      scope: 'jobs:read',
      summary:
        'An upload: each declared file, whether it is in S3, and fresh PUT URLs for the missing ones while it is open',
      params: uploadIdParams,
      responses: { 200: { description: 'The upload', json: uploadSchema } },
      errors: ['not_found'],
    },
  } as const satisfies Record<string, OperationSpec>;
}
