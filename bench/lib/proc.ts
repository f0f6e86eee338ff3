import { readFileSync } from 'node:fs';

/** Resident memory of a process from /proc: current (VmRSS) and high-water mark (VmHWM), in bytes. */
export function readMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

export interface RssSampler {
  stop(): { peakRss: number; hwm: number };
}

/** Samples VmRSS every `intervalMs` until stopped; the peak covers spikes between samples via VmHWM. */
export function sampleRss(pid: number, intervalMs = 25): RssSampler {
  let peakRss = readMemory(pid).rss;
  const timer = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, readMemory(pid).rss);
    } catch {
      // the process is gone; keep what was seen
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const { rss, hwm } = readMemory(pid);
      return { peakRss: Math.max(peakRss, rss), hwm };
    },
  };
}

export const MB = 1024 * 1024;

/** CPU time a process has used so far (user + system, /proc/<pid>/stat), in ms. */
export function readCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux build Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;
