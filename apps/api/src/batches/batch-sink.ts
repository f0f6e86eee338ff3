import type { BatchItem } from './items.ts';
import type { BatchWriter } from './create.ts';
import type { ItemSink } from './rows.ts';

/** Items held before the batch is opened: a dry run whose flag comes after them writes nothing. */
const HELD_ITEMS = 500;

/** What a dry run counted: enough to estimate its cost (estimate.ts). */
export interface DryRunTally {
  items: number;
  /** Image URLs and direct uploads: their bytes are read by the workers, so their duplicates are not known before. */
  unseenItems: number;
  /** The sha256 of each file item, repeats included. */
  fileHashes: string[];
}

export interface BatchSink extends ItemSink {
  readonly dryRun: boolean;
  readonly tally: DryRunTally;
  /** The batch being written, opened now if no item made it open yet; never for a dry run. */
  writer(): Promise<BatchWriter>;
  /** The writer if one was opened (to discard or fail it). */
  readonly opened: BatchWriter | undefined;
}

/**
 * The sink of `POST /v1/batches`: the first items are held in memory, so a small request
 * opens its batch only once it was read through; past them the batch is opened (`open`)
 * and written as items come. Once the request turns out to be a dry run, items are only
 * counted, and what was held is dropped (a batch opened already is the caller's to discard).
 * Without `open` (a retry whose batch exists), items are only counted.
 */
export function batchSink(open: (() => Promise<BatchWriter>) | null): BatchSink {
  let held: BatchItem[] = [];
  let writer: BatchWriter | undefined;
  let dryRun = false;
  const tally: DryRunTally = { items: 0, unseenItems: 0, fileHashes: [] };

  const openWriter = async (): Promise<BatchWriter> => {
    if (!open) throw new Error('this request writes no batch');
    if (!writer) {
      writer = await open();
      for (const item of held) await writer.add(item);
      held = [];
    }
    return writer;
  };

  return {
    get dryRun() {
      return dryRun;
    },
    tally,
    get opened() {
      return writer;
    },
    add(item) {
      tally.items += 1;
      if (item.kind === 'file') {
        if (dryRun) tally.fileHashes.push(item.original.sha256);
      } else tally.unseenItems += 1;
      if (dryRun || !open) return undefined;
      if (writer) return writer.add(item);
      held.push(item);
      return held.length >= HELD_ITEMS ? openWriter().then(() => undefined) : undefined;
    },
    markDryRun() {
      dryRun = true;
      held = [];
    },
    writer() {
      if (dryRun) throw new Error('a dry run opens no batch');
      return openWriter();
    },
  };
}
