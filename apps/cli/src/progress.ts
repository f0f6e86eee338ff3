/** One progress line, rewritten in place on a terminal; silent elsewhere (scripts read the summary). */
export interface Progress { update(done: number, total: number, failed: number): void; end(): void }

export function makeProgress(stream: NodeJS.WriteStream, now: () => number = Date.now): Progress {
  const started = now();
  let firstDone: number | undefined;
  let shown = false;
  return {
    update(done, total, failed) {
      if (!stream.isTTY) return;
      firstDone ??= done;
      const seconds = (now() - started) / 1000;
      const rate = seconds > 0 ? (done - firstDone) / seconds : 0;
      const eta = rate > 0 ? `${Math.ceil((total - done) / rate)}s` : '?';
      const width = 24;
      const filled = total > 0 ? Math.round((done / total) * width) : 0;
      stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ${rate.toFixed(1)}/s  ETA ${eta}  failed ${failed}   `);
      shown = true;
    },
    end() {
      if (shown) stream.write('\n');
    },
  };
}
