import { readFileSync } from 'node:fs';

/** Resident memory of a process from /proc: current (VmRSS) and high-water mark (VmHWM), in bytes. */
export function readMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

export interface RssSampler { stop(): { peakRss: number; hwm: number } }

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
