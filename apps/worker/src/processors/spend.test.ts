import { describe, expect, it } from 'vitest';
import type { CallReservation, Reservation } from '@cutout/shared/stores';
import { BudgetExhaustedError, creditDecision, makeCallLedger } from './spend.ts';

const HOUR = 3_600_000;
const at = (iso: string) => Date.parse(iso);

describe('creditDecision', () => {
  const hold = { since: '2026-11-26T10:00:00.000Z', message: '402' };

  it.each<[string, string, string, ReturnType<typeof creditDecision>]>([
    ['calls when the account has credit', '2026-11-26T09:00:00.000Z', '2026-11-26T12:00:00.000Z', { kind: 'call' }],
    [
      'waits in the held queue while the hold is young',
      '2026-11-26T09:00:00.000Z',
      '2026-11-26T20:00:00.000Z',
      { kind: 'hold' },
    ],
    [
      'fails a job queued before the hold once the hold is 24 h old',
      '2026-11-26T09:00:00.000Z',
      '2026-11-27T10:00:00.000Z',
      { kind: 'fail', message: 'ByByBG answered 402 (out of credit) and no credit came back within 24 h' },
    ],
    [
      'lets a job submitted during the hold wait its own 24 h',
      '2026-11-27T06:00:00.000Z',
      '2026-11-27T10:30:00.000Z',
      { kind: 'park', until: at('2026-11-28T06:00:00.000Z') },
    ],
  ])('%s', (_, createdAt, now, expected) => {
    expect(creditDecision(expected.kind === 'call' ? null : hold, createdAt, 24 * HOUR, at(now))).toEqual(expected);
  });
});

describe('makeCallLedger', () => {
  function budgets(answers: Reservation[]) {
    const refunded: CallReservation[] = [];
    let reserved = 0;
    return {
      refunded,
      reserved: () => reserved,
      budgets: {
        async reserve() {
          reserved += 1;
          return (
            answers.shift() ?? {
              ok: true as const,
              reservation: { tenantId: 'acme', day: '2026-11-26', month: '2026-11' },
            }
          );
        },
        async refund(reservation: CallReservation) {
          refunded.push(reservation);
        },
      },
    };
  }

  it('reserves once for the first call however often it is asked before the call is sent', async () => {
    const fake = budgets([]);
    const ledger = makeCallLedger(fake.budgets, 'acme');
    await ledger.reserve();
    await ledger.reserve();
    expect(fake.reserved()).toBe(1);
    ledger.sent();
    await ledger.reserve();
    expect(fake.reserved()).toBe(2);
  });

  it('gives back a call reserved and never sent, once', async () => {
    const fake = budgets([]);
    const ledger = makeCallLedger(fake.budgets, 'acme');
    await ledger.reserve();
    await ledger.release();
    await ledger.release();
    expect(fake.refunded).toHaveLength(1);
    await ledger.reserve();
    ledger.sent();
    await ledger.release();
    expect(fake.refunded).toHaveLength(1);
  });

  it('throws BudgetExhaustedError with the reset time when the budget refuses', async () => {
    const resetsAt = at('2026-11-27T00:00:00.000Z');
    const ledger = makeCallLedger(budgets([{ ok: false, exhausted: ['daily'], resetsAt }]).budgets, 'acme');
    const error = await ledger.reserve().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(BudgetExhaustedError);
    expect(error).toMatchObject({ exhausted: ['daily'], resetsAt });
  });
});
