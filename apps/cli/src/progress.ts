/** One progress line, rewritten in place on a terminal; silent elsewhere (scripts read the summary). */
export interface Progress {
  /** Files sent to storage so far, before any result can come back. */
  uploaded(done: number, total: number): void;
  update(done: number, total: number, failed: number): void;
  end(): void;
}

export function makeProgress(stream: NodeJS.WriteStream, now: () => number = Date.now): Progress {
  const started = now();
  let firstDone: number | undefined;
  let shown = false;
  const bar = (done: number, total: number, width = 24) => {
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  };
  return {
    uploaded(done, total) {
      if (!stream.isTTY) return;
      stream.write(`\r${bar(done, total)} uploaded ${done}/${total}   `);
      shown = true;
    },
    update(done, total, failed) {
      if (!stream.isTTY) return;
      firstDone ??= done;
      const seconds = (now() - started) / 1000;
      const rate = seconds > 0 ? (done - firstDone) / seconds : 0;
      const eta = rate > 0 ? `${Math.ceil((total - done) / rate)}s` : '?';
      stream.write(`\r${bar(done, total)} ${done}/${total}  ${rate.toFixed(1)}/s  ETA ${eta}  failed ${failed}   `);
      shown = true;
    },
    end() {
      if (shown) stream.write('\n');
    },
  };
}
