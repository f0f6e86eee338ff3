import { describe, expect, it } from 'vitest';
import { FormData } from 'undici';
import type { CutoutClient, Json } from './client.ts';
import { confirmSpend, describeEstimate, SpendNotConfirmed } from './confirm.ts';

/** A client whose dry runs answer the given estimates in turn, and records what they were sent. */
function clientAnswering(...estimates: Json[]): CutoutClient & { sent: FormData[] } {
  const sent: FormData[] = [];
  const refuse = async (): Promise<never> => {
    throw new Error('not part of a dry run');
  };
  return {
    sent,
    async estimate(body) {
      sent.push(body);
      return estimates.shift()!;
    },
    get: refuse,
    results: refuse,
    postBatch: refuse,
    post: refuse,
    putFile: refuse,
    download: refuse,
  };
}

const dryRunnable = {
  form: async (dryRun: boolean) => {
    const form = new FormData();
    if (dryRun) form.append('dry_run', 'true');
    return form;
  },
};

const estimate = (calls: number, extra: Json = {}) => ({
  items: calls + 2,
  duplicates: 2,
  upstream_calls: calls,
  upstream_calls_exact: true,
  budget_after: { daily: null, monthly: null },
  ...extra,
});

describe('confirmSpend', () => {
  it('goes ahead without asking when the estimate is within the threshold', async () => {
    const questions: string[] = [];
    const client = clientAnswering(estimate(10));
    await confirmSpend(client, [dryRunnable], {
      over: 10,
      ask: async (question) => {
        questions.push(question);
        return false;
      },
    });
    expect(questions).toEqual([]);
    expect(client.sent[0]?.get('dry_run')).toBe('true');
  });

  it('asks on a terminal, adding up every request, and stops when the answer is not yes', async () => {
    const questions: string[] = [];
    const ask = async (question: string) => {
      questions.push(question);
      return false;
    };
    const client = clientAnswering(
      estimate(6, { budget_after: { daily: { limit: 10, used: 6 }, monthly: null } }),
      estimate(5, { budget_after: { daily: { limit: 10, used: 5 }, monthly: null } }),
    );
    await expect(confirmSpend(client, [dryRunnable, dryRunnable], { over: 10, ask })).rejects.toBeInstanceOf(
      SpendNotConfirmed,
    );
    expect(questions).toEqual([
      'This run would make up to 11 upstream calls for 15 images (4 reuse earlier results; 1 over the daily budget (those wait for it)): more than --confirm-over 10. Submit it? [y/N] ',
    ]);
  });

  it('goes ahead when the answer is yes', async () => {
    await expect(
      confirmSpend(clientAnswering(estimate(20)), [dryRunnable], { over: 10, ask: async () => true }),
    ).resolves.toBeUndefined();
  });

  it('refuses without a terminal, saying how to go ahead', async () => {
    const error = await confirmSpend(clientAnswering(estimate(20)), [dryRunnable], { over: 10, ask: null }).catch(
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(SpendNotConfirmed);
    expect((error as Error).message).toBe(
      'This run would make 20 upstream calls for 22 images (2 reuse earlier results): more than --confirm-over 10. Nothing was submitted: run it on a terminal to confirm, or raise --confirm-over.',
    );
  });
});

describe('describeEstimate', () => {
  it('says what is left of each budget', () => {
    expect(
      describeEstimate({ items: 5, duplicates: 0, upstreamCalls: 5, exact: false, remaining: { monthly: 95 } }),
    ).toBe('up to 5 upstream calls for 5 images (0 reuse earlier results; 95 left in the monthly budget after it)');
  });
});
