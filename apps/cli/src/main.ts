import { makeClient, ApiCallError, type CutoutClient, type Json } from './client.ts';
import { parseArgs, UsageError, USAGE } from './args.ts';
import { runBatch } from './batch-run.ts';
import { SpendNotConfirmed, terminalQuestion } from './confirm.ts';
import { makeProgress } from './progress.ts';

/** `cutout status <id>`: a job or a batch, by its id's prefix. */
async function status(client: CutoutClient, id: string, json: boolean): Promise<number> {
  if (!/^(job|batch)_[0-9A-Za-z]+$/.test(id)) throw new UsageError(`"${id}" is not a job_… or batch_… id`);
  const view: Json = await client.get(id.startsWith('batch_') ? `/v1/batches/${id}` : `/v1/jobs/${id}`);
  if (json) console.log(JSON.stringify(view, null, 2));
  else if (view.object === 'batch') {
    const { counts } = view;
    console.log(
      `${view.id}  ${view.status}  ${counts.succeeded + counts.failed + counts.canceled}/${counts.total} ended  (succeeded ${counts.succeeded}, failed ${counts.failed}, canceled ${counts.canceled}, queued ${counts.queued}, processing ${counts.processing}, rejected ${counts.rejected})`,
    );
    if (view.eta) console.log(`ETA ${Math.ceil(view.eta.remaining_ms / 1000)}s at ${view.eta.items_per_second}/s`);
    console.log(`results: ${view.results_url}`);
  } else {
    console.log(`${view.id}  ${view.status}${view.error ? `  ${view.error.code}: ${view.error.message}` : ''}`);
    if (view.result) console.log(`result: ${view.result.url}`);
  }
  return 0;
}

/** `cutout review <id>`: a signed, expiring link to the review page of a batch or job. */
async function review(
  client: CutoutClient,
  id: string,
  expires: string | true | undefined,
  json: boolean,
): Promise<number> {
  if (!/^(job|batch)_[0-9A-Za-z]+$/.test(id)) throw new UsageError(`"${id}" is not a job_… or batch_… id`);
  const seconds = expires === undefined ? undefined : Number(expires);
  if (seconds !== undefined && !Number.isInteger(seconds))
    throw new UsageError('--expires must be a whole number of seconds');
  const link = await client.post(
    `/v1/${id.startsWith('batch_') ? 'batches' : 'jobs'}/${id}/review-link`,
    seconds === undefined ? undefined : { expires_in: seconds },
  );
  if (json) console.log(JSON.stringify(link, null, 2));
  else
    console.log(
      `${link.url}\n(expires ${link.expires_at}; anyone with this link can see the ${id.startsWith('batch_') ? 'batch' : 'job'} and flag cutouts until then)`,
    );
  return 0;
}

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const args = parseArgs(argv);
  if (args.flags.help || !args.command) {
    console.log(USAGE);
    return args.command || args.flags.help ? 0 : 2;
  }
  const apiKey = env.CUTOUT_API_KEY;
  if (!apiKey) throw new UsageError('Set CUTOUT_API_KEY to your Cutout API key');
  const client = makeClient({ baseUrl: (env.CUTOUT_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, ''), apiKey });
  const json = args.flags.json === true;

  if (args.command === 'status') {
    const [id] = args.positionals;
    if (!id) throw new UsageError('status needs a job or batch id');
    return status(client, id, json);
  }
  if (args.command === 'review') {
    const [id] = args.positionals;
    if (!id) throw new UsageError('review needs a batch or job id');
    return review(client, id, args.flags.expires, json);
  }
  if (args.command === 'batch') {
    const [input] = args.positionals;
    const out = args.flags.out;
    if (!input || typeof out !== 'string')
      throw new UsageError('batch needs a folder or manifest.csv and --out <folder>');
    const chunk = Number(args.flags.chunk ?? 500);
    if (!Number.isInteger(chunk) || chunk < 1 || chunk > 1000) throw new UsageError('--chunk must be 1 to 1000');
    const over = args.flags['confirm-over'];
    if (over !== undefined && (typeof over !== 'string' || !/^\d{1,12}$/.test(over)))
      throw new UsageError('--confirm-over must be a whole number of upstream calls');
    const confirm =
      over === undefined ? undefined : { over: Number(over), ask: terminalQuestion(process.stdin, process.stderr) };
    const parallel = Number(args.flags.parallel ?? 8);
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64)
      throw new UsageError('--parallel must be 1 to 64');
    const summary = await runBatch({
      input,
      outDir: out,
      chunk,
      parallel,
      multipart: args.flags.multipart === true,
      client,
      progress: makeProgress(process.stderr),
      confirm,
    });
    if (json) console.log(JSON.stringify(summary, null, 2));
    else {
      console.log(
        `${summary.succeeded} of ${summary.total} succeeded, ${summary.failed} failed; results in ${summary.out}`,
      );
      for (const { item, error } of summary.failures) console.log(`  ${item}: ${error}`);
    }
    return summary.failed > 0 ? 1 : 0;
  }
  throw new UsageError(`Unknown command "${args.command}"`);
}

try {
  process.exitCode = await main(process.argv.slice(2), process.env);
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else if (error instanceof SpendNotConfirmed) {
    // Like bad usage, nothing was done: the command needs a terminal, or another --confirm-over.
    console.error(`cutout: ${error.message}`);
    process.exitCode = 2;
  } else {
    console.error(error instanceof ApiCallError ? `cutout: ${error.message}` : `cutout: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
