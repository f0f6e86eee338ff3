import { createInterface } from 'node:readline/promises';
import type { FormData } from 'undici';
import type { CutoutClient, Json } from './client.ts';

/** A request of the run that can be sent as a dry run. */
export interface DryRunnable {
  form(dryRun: boolean): Promise<FormData>;
}

/** `--confirm-over N`: above N estimated upstream calls, nothing is submitted unless the user says so. */
export interface SpendConfirmation {
  over: number;
  /** Asks a yes/no question on the terminal; null when there is none to ask on. */
  ask: ((question: string) => Promise<boolean>) | null;
}

/** The run was not submitted: the estimate was above --confirm-over and nobody confirmed it. */
export class SpendNotConfirmed extends Error {
  override readonly name = 'SpendNotConfirmed';
}

export interface RunEstimate {
  items: number;
  duplicates: number;
  upstreamCalls: number;
  /** False when URL items (or several requests, which cannot see each other's repeats) make it an upper bound. */
  exact: boolean;
  /** Calls left in each budgeted period after the run; negative: that many would wait for the budget. */
  remaining: { daily?: number; monthly?: number };
}

/** Dry runs of every request of the run, added up. */
async function estimateRun(client: CutoutClient, requests: readonly DryRunnable[]): Promise<RunEstimate> {
  const answers: Json[] = [];
  for (const request of requests) answers.push(await client.estimate(await request.form(true)));
  const total = (field: string) => answers.reduce((sum, answer) => sum + Number(answer[field] ?? 0), 0);
  const upstreamCalls = total('upstream_calls');
  const remaining: RunEstimate['remaining'] = {};
  for (const period of ['daily', 'monthly'] as const) {
    const first = answers[0]?.budget_after?.[period] as { limit: number; used: number } | null | undefined;
    // Each dry run counts only itself: the budget before the run is the first one's, less its own calls.
    if (first) remaining[period] = first.limit - (first.used - Number(answers[0]!.upstream_calls)) - upstreamCalls;
  }
  return {
    items: total('items'),
    duplicates: total('duplicates'),
    upstreamCalls,
    exact: answers.length === 1 && answers[0]!.upstream_calls_exact === true,
    remaining,
  };
}

export function describeEstimate(estimate: RunEstimate): string {
  const budgets = Object.entries(estimate.remaining).map(([period, left]) =>
    left >= 0
      ? `${left} left in the ${period} budget after it`
      : `${-left} over the ${period} budget (those wait for it)`,
  );
  return (
    `${estimate.exact ? '' : 'up to '}${estimate.upstreamCalls} upstream calls for ${estimate.items} images` +
    ` (${estimate.duplicates} reuse earlier results${budgets.length > 0 ? `; ${budgets.join(', ')}` : ''})`
  );
}

/** Runs the dry runs and, above the threshold, asks or refuses; returns when the run may go ahead. */
export async function confirmSpend(
  client: CutoutClient,
  requests: readonly DryRunnable[],
  { over, ask }: SpendConfirmation,
): Promise<void> {
  const estimate = await estimateRun(client, requests);
  if (estimate.upstreamCalls <= over) return;
  const summary = `This run would make ${describeEstimate(estimate)}: more than --confirm-over ${over}`;
  if (!ask)
    throw new SpendNotConfirmed(
      `${summary}. Nothing was submitted: run it on a terminal to confirm, or raise --confirm-over.`,
    );
  if (!(await ask(`${summary}. Submit it? [y/N] `))) throw new SpendNotConfirmed('Nothing was submitted.');
}

/** A yes/no question on the terminal: only y or yes (any case) is a yes. */
export function terminalQuestion(input: NodeJS.ReadStream, output: NodeJS.WriteStream): SpendConfirmation['ask'] {
  if (!input.isTTY || !output.isTTY) return null;
  return async (question) => {
    const rl = createInterface({ input, output });
    try {
      return /^y(es)?$/i.test((await rl.question(question)).trim());
    } finally {
      rl.close();
    }
  };
}
