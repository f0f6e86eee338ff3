import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { tenantOf } from '../auth/authenticate.ts';
import { notFound } from '../http/errors.ts';
import { jsonArray, type UploadDeps } from './create.ts';
import { putUrlLines } from './put-urls.ts';

/**
 * `GET /v1/uploads/:id`: the upload and each declared file with `uploaded` (an object of its
 * declared size is in S3); while the upload is open, fresh PUT URLs for the files still
 * missing, so a client that was interrupted uploads only those.
 */
export async function showUpload(
  { uploads, storage }: UploadDeps,
  request: FastifyRequest<{ Params: { id: string } }>,
  reply: FastifyReply,
) {
  const upload = await uploads.get(request.params.id);
  if (!upload || upload.tenantId !== tenantOf(request)) throw notFound('Upload');
  const remainingMs = Date.parse(upload.expiresAt) - Date.now();
  const open = upload.status === 'open' && remainingMs > 1_000;
  const status = upload.status === 'used' ? 'used' : open ? 'open' : 'expired';
  const head = `{"object":"upload","id":"${upload.id}","status":"${status}","batch_id":${JSON.stringify(upload.batchId ?? null)},"created_at":"${upload.createdAt}","expires_at":"${upload.expiresAt}","files":[`;
  const lines = putUrlLines(
    { uploads, storage },
    upload,
    Math.max(remainingMs, 1_000),
    (file) => open && file.storedBytes !== file.bytes,
    { withState: true },
  );
  return reply.type('application/json; charset=utf-8').send(Readable.from(jsonArray(head, lines, ']}')));
}
