import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Agent, request, type FormData } from 'undici';

// biome-ignore lint/suspicious/noExplicitAny: the CLI reads answers field by field; test/contract checks their shapes
export type Json = Record<string, any>;

/** An answer of the API that is not a success, with its error envelope. */
export class ApiCallError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(`${message} (HTTP ${status}, ${code})`);
    this.name = 'ApiCallError';
    this.status = status;
    this.code = code;
  }
}

export interface CutoutClient {
  get(path: string): Promise<Json>;
  /** JSON lines of a batch's results manifest. */
  results(batchId: string): Promise<Json[]>;
  postBatch(body: FormData, idempotencyKey: string): Promise<Json>;
  /** The dry run of a batch (its form carries dry_run): what it would cost, nothing created. */
  estimate(body: FormData): Promise<Json>;
  /** A POST with an optional JSON body (and Idempotency-Key). */
  post(path: string, json?: Json, idempotencyKey?: string): Promise<Json>;
  /** PUTs a file to a presigned URL with the headers it was signed with. */
  putFile(url: string, headers: Record<string, string>, path: string): Promise<void>;
  /** Downloads a presigned result URL to `path`, atomically: a half-written file never has the final name. */
  download(url: string, path: string): Promise<void>;
}

export function makeClient({ baseUrl, apiKey }: { baseUrl: string; apiKey: string }): CutoutClient {
  const headers = { 'x-api-key': apiKey };
  // Not the global dispatcher: on Node 24 that can be the Agent of Node's bundled undici,
  // which does not recognise this undici's FormData (the batch upload's body).
  const dispatcher = new Agent();
  async function call(
    method: 'GET' | 'POST',
    path: string,
    extra: { body?: FormData | string; headers?: Record<string, string> } = {},
  ): Promise<string> {
    const response = await request(`${baseUrl}${path}`, {
      method,
      body: extra.body,
      headers: { ...headers, ...extra.headers },
      dispatcher,
    });
    const text = await response.body.text();
    if (response.statusCode >= 400) {
      let error: Json = {};
      try {
        error = (JSON.parse(text) as Json).error ?? {};
      } catch {
        /* not our envelope: a proxy's page */
      }
      throw new ApiCallError(response.statusCode, error.code ?? 'http_error', error.message ?? text.slice(0, 200));
    }
    return text;
  }
  return {
    async get(path) {
      return JSON.parse(await call('GET', path)) as Json;
    },
    async results(batchId) {
      const text = await call('GET', `/v1/batches/${batchId}/results?format=jsonl`);
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Json);
    },
    async postBatch(body, idempotencyKey) {
      return JSON.parse(
        await call('POST', '/v1/batches', { body, headers: { 'idempotency-key': idempotencyKey } }),
      ) as Json;
    },
    async estimate(body) {
      return JSON.parse(await call('POST', '/v1/batches', { body })) as Json;
    },
    async post(path, json, idempotencyKey) {
      const body = json === undefined ? undefined : JSON.stringify(json);
      const extra = {
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      };
      return JSON.parse(await call('POST', path, { body, headers: extra })) as Json;
    },
    async putFile(url, signedHeaders, path) {
      // Straight to S3: the API key is not sent, the presigned URL is the credential.
      const response = await request(url, { method: 'PUT', body: createReadStream(path), headers: signedHeaders });
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`upload of ${path} answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
    },
    async download(url, path) {
      const response = await request(url, { dispatcher });
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new Error(`result download answered HTTP ${response.statusCode}`);
      }
      const partial = `${path}.part`;
      try {
        await pipeline(response.body, createWriteStream(partial));
        await rename(partial, path);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
    },
  };
}
