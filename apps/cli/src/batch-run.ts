import { openAsBlob } from 'node:fs';
import { access, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { FormData } from 'undici';
import type { CutoutClient, Json } from './client.ts';
import { confirmSpend, type SpendConfirmation } from './confirm.ts';
import type { Progress } from './progress.ts';
import { loadState, saveState, type RunState } from './state.ts';
import { submitFolderDirect } from './direct-upload.ts';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);
const TERMINAL = new Set(['succeeded', 'failed', 'canceled', 'expired']);

export interface BatchRunOptions {
  input: string;
  outDir: string;
  chunk: number;
  pollMs?: number;
  client: CutoutClient;
  progress: Progress;
  /** `--confirm-over N`: a dry run first; above N upstream calls, ask before anything is submitted. */
  confirm?: SpendConfirmation;
  /** Folders go through direct uploads to S3 unless this is set: then as multipart requests through the API. */
  multipart?: boolean;
  /** Files uploaded at once (direct uploads). */
  parallel?: number;
}

export interface BatchSummary {
  out: string;
  batches: string[];
  total: number;
  succeeded: number;
  failed: number;
  failures: { item: string; error: string }[];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Uploads what was not submitted yet, then follows every batch of the run until all items ended. */
export async function runBatch(options: BatchRunOptions): Promise<BatchSummary> {
  const input = resolve(options.input);
  const outDir = resolve(options.outDir);
  await mkdir(outDir, { recursive: true });
  const state = await loadState(outDir, input);
  const folder = (await stat(input)).isDirectory();
  const pending = folder ? await pendingFiles(input, state) : [];
  const requests = folder ? folderRequests(options, input, pending) : await manifestRequests(input, state);
  // The estimate is a dry run of the multipart requests, whichever way the files then go.
  if (options.confirm && requests.length > 0) await confirmSpend(options.client, requests, options.confirm);
  if (folder && !options.multipart) {
    const record = (batch: Json, refs: string[]) => {
      recordRejected(state, batch, (row) => refs[row - 1] ?? `row ${row}`);
      state.batches.push({ id: batch.id as string, refs });
    };
    await submitFolderDirect(
      { client: options.client, progress: options.progress, parallel: options.parallel ?? 8, input, outDir },
      state,
      pending,
      options.chunk,
      record,
    );
  } else {
    for (const request of requests) {
      const batch = await options.client.postBatch(await request.form(), request.idempotencyKey);
      recordRejected(state, batch, request.nameOfRow);
      state.batches.push({ id: batch.id as string, refs: request.refs });
      await saveState(outDir, state);
    }
  }
  await follow(options, outDir, state);
  return summarize(outDir, state);
}

/** One POST /v1/batches of the run; `form(true)` is its dry run (the dry_run field first, before any file). */
interface BatchRequest {
  refs: string[];
  idempotencyKey: string;
  form(dryRun?: boolean): Promise<FormData>;
  nameOfRow(row: number): string;
}

/** Images of the folder not in any earlier batch of this run. */
async function pendingFiles(input: string, state: RunState): Promise<string[]> {
  const names = (await readdir(input, { withFileTypes: true }))
    .filter((entry) => entry.isFile() && IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase()))
    .map((entry) => entry.name)
    .sort();
  const submitted = new Set(state.batches.flatMap((batch) => batch.refs));
  return names.filter((name) => !submitted.has(name));
}

/**
 * The pending images in chunks of `chunk` files per multipart request (`--multipart`, and the
 * dry runs of `--confirm-over`; otherwise the files go by direct upload, direct-upload.ts).
 * The Idempotency-Key names the chunk's content, so a run killed between the POST and saving
 * its state gets the same batch back instead of a second one.
 */
function folderRequests({ chunk }: BatchRunOptions, input: string, pending: string[]): BatchRequest[] {
  const requests: BatchRequest[] = [];
  for (let start = 0; start < pending.length; start += chunk) {
    const refs = pending.slice(start, start + chunk);
    requests.push({
      refs,
      idempotencyKey: `cutout-cli-${sha256(`${input}\n${refs.join('\n')}`)}`,
      async form(dryRun = false) {
        const form = new FormData();
        if (dryRun) form.append('dry_run', 'true');
        for (const name of refs) form.append('file', await openAsBlob(join(input, name)), name);
        return form;
      },
      nameOfRow: (row) => refs[row - 1] ?? `row ${row}`,
    });
  }
  return requests;
}

/** A CSV manifest is one batch; it is submitted once per output folder. */
async function manifestRequests(input: string, state: RunState): Promise<BatchRequest[]> {
  if (state.batches.length > 0) return [];
  const csv = await readFile(input, 'utf8');
  return [
    {
      refs: [],
      idempotencyKey: `cutout-cli-${sha256(`${input}\n${csv}`)}`,
      async form(dryRun = false) {
        const form = new FormData();
        if (dryRun) form.append('dry_run', 'true');
        form.append('manifest', new Blob([csv], { type: 'text/csv' }), 'manifest.csv');
        return form;
      },
      nameOfRow: (row) => `row ${row}`,
    },
  ];
}

function recordRejected(state: RunState, batch: Json, nameOf: (row: number) => string): void {
  for (const { row, reason } of (batch.rejected ?? []) as { row: number; reason: string }[])
    state.ended[nameOf(row)] = { status: 'failed', error: `rejected: ${reason}` };
}

/** The file a result is saved as: the item's name with a .png extension, never a path. */
export function resultFileName(ref: string): string {
  const stem = ref
    .replace(/\.[A-Za-z0-9]{1,5}$/, '')
    .replace(/[^\p{L}\p{N}._ -]/gu, '_')
    .replace(/^\.+/, '_');
  return `${stem || 'result'}.png`;
}

/** Polls each open batch; when its counts moved, reads its manifest and saves every new result. */
async function follow(
  { client, progress, pollMs = 1000 }: BatchRunOptions,
  outDir: string,
  state: RunState,
): Promise<void> {
  const seen = new Map<string, number>();
  const totals = new Map<string, number>();
  const closed = new Set<string>();
  for (;;) {
    for (const batch of state.batches) {
      if (closed.has(batch.id)) continue;
      const view = await client.get(`/v1/batches/${batch.id}`);
      const { total, succeeded, failed, canceled, rejected } = view.counts as Record<string, number>;
      totals.set(batch.id, total! + rejected!);
      const ended = succeeded! + failed! + canceled!;
      if (seen.get(batch.id) !== ended) {
        await saveResults(client, outDir, state, await client.results(batch.id));
        seen.set(batch.id, ended);
        await saveState(outDir, state);
      }
      if (ended === total) closed.add(batch.id);
    }
    const values = Object.values(state.ended);
    progress.update(
      values.length,
      [...totals.values()].reduce((sum, n) => sum + n, 0),
      values.filter((item) => item.status !== 'succeeded').length,
    );
    if (closed.size === state.batches.length) break;
    await sleep(pollMs);
  }
  progress.end();
}

async function saveResults(client: CutoutClient, outDir: string, state: RunState, rows: Json[]): Promise<void> {
  for (const row of rows) {
    const ref = (row.client_ref as string | null) ?? (row.job_id as string);
    if (!TERMINAL.has(row.status) || state.ended[ref]?.status === 'succeeded') continue;
    if (row.status !== 'succeeded') {
      state.ended[ref] = {
        status: row.status === 'canceled' ? 'canceled' : 'failed',
        error: row.error_code ? `${row.error_code}: ${row.error_message}` : row.status,
      };
      continue;
    }
    const file = resultFileName(ref);
    const path = join(outDir, file);
    // A result saved by an interrupted run is not fetched again.
    if (
      !(await access(path).then(
        () => true,
        () => false,
      ))
    )
      await client.download(row.result_url, path);
    state.ended[ref] = { status: 'succeeded', file };
  }
}

function summarize(outDir: string, state: RunState): BatchSummary {
  const entries = Object.entries(state.ended);
  const failures = entries
    .filter(([, item]) => item.status !== 'succeeded')
    .map(([item, { error }]) => ({ item, error: error ?? 'failed' }));
  return {
    out: outDir,
    batches: state.batches.map((batch) => batch.id),
    total: entries.length,
    succeeded: entries.length - failures.length,
    failed: failures.length,
    failures,
  };
}
