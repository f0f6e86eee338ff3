/** `cutout <command> [positionals] [--flag value] [--switch]`; flags may come anywhere. */
export interface ParsedArgs {
  command?: string;
  positionals: string[];
  flags: Record<string, string | true>;
}

const SWITCHES = new Set(['json', 'help', 'multipart']);

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positionals: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h') flags.help = true;
    else if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (inline !== undefined) flags[name] = inline;
      else if (SWITCHES.has(name)) flags[name] = true;
      else {
        const value = argv[i + 1];
        if (value === undefined) throw new UsageError(`--${name} needs a value`);
        flags[name] = value;
        i += 1;
      }
    } else positionals.push(arg);
  }
  const [command, ...rest] = positionals;
  return { command, positionals: rest, flags };
}

/** Bad usage: exit 2 with the message and the usage text. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `Usage:
  cutout batch <folder|manifest.csv> --out <folder> [--chunk 500] [--parallel 8] [--multipart] [--confirm-over N] [--json]
      Uploads every image of the folder (or the CSV manifest of image URLs), shows progress,
      downloads each result into --out as it finishes, and prints a summary. Run it again
      after an interruption: it resumes from --out/.cutout-state.json without resubmitting.
      --confirm-over N: a dry run first; if it would make more than N ByByBG calls, asks
      before submitting (without a terminal: submits nothing and exits 2).
      A folder's files go straight to storage (--parallel at a time), --chunk files per
      batch; --multipart sends them through the API instead.
  cutout status <job_id|batch_id> [--json]
  cutout review <batch_id|job_id> [--expires <seconds>] [--json]
      Prints a review link: a page showing every original and cutout, where a reviewer can
      flag wrong cutouts. Share it instead of an API key; it expires (default 24 h).

Environment: CUTOUT_URL (default http://127.0.0.1:3000), CUTOUT_API_KEY (required).
Exit codes: 0 done, 1 failed items or an error, 2 bad usage or a run --confirm-over stopped.`;
