import { describe, expect, it } from 'vitest';
import type { BatchRecord } from '../stores/batch-record.ts';
import { toBatchView } from './batch-view.ts';

const batch: BatchRecord = {
  id: 'batch_x',
  tenantId: 'acme',
  status: 'processing',
  createdAt: '2030-01-01T00:00:00.000Z',
  total: 100,
  queued: 60,
  processing: 0,
  succeeded: 38,
  failed: 2,
  canceled: 0,
  rejected: 0,
  ended: 40,
  upstreamCalls: 40,
  creditsSaved: 0,
  itemEvents: false,
  reviewRejected: 0,
  qualityFlagged: 0,
  fed: 100,
};

describe('batch view', () => {
  it('estimates the time left from the rate of the items that ended last', () => {
    // 11 ends over 10 s: 1 item/s, 60 left.
    const recentEnds = Array.from({ length: 11 }, (_, i) => 1_000_000 - i * 1000);
    const view = toBatchView(batch, { publicBaseUrl: 'https://cutout.example', recentEnds, now: 1_000_000 });
    expect(view.eta).toEqual({
      remaining_ms: 60_000,
      items_per_second: 1,
      estimated_completion_at: new Date(1_060_000).toISOString(),
    });
    expect(view.results_url).toBe('https://cutout.example/v1/batches/batch_x/results');
  });

  it('has no estimate before two items ended or once the batch is over', () => {
    expect(toBatchView(batch, { publicBaseUrl: 'x', recentEnds: [5] }).eta).toBeNull();
    expect(
      toBatchView({ ...batch, status: 'completed', ended: 100 }, { publicBaseUrl: 'x', recentEnds: [5, 4, 3] }).eta,
    ).toBeNull();
  });
});
