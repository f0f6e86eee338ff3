import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { Redis } from 'ioredis';
import { median, round, spread } from './stats.ts';
import type { ResultRow, Sample } from './types.ts';

/** Medians over repetitions, `met` decided on the medians. */
export function aggregate(repetitions: Sample[][]): ResultRow[] {
  const byName = new Map<string, Sample[]>();
  for (const samples of repetitions)
    for (const sample of samples) byName.set(sample.name, [...(byName.get(sample.name) ?? []), sample]);
  const scenarioNumber = (name: string) => Number(/^(\d+)/.exec(name)?.[1] ?? 99);
  const entries = [...byName.entries()].sort(([a], [b]) => scenarioNumber(a) - scenarioNumber(b));
  return entries.map(([name, samples]) => {
    const first = samples[0]!;
    const values = samples.map((sample) => sample.value);
    const baselines = samples.flatMap((sample) => (sample.baseline === undefined ? [] : [sample.baseline]));
    const details = samples.flatMap((sample) => (sample.detail === undefined ? [] : [sample.detail]));
    const value = median(values);
    const baseline = baselines.length > 0 ? median(baselines) : null;
    return {
      name,
      value: round(value, 3),
      unit: first.unit,
      baseline: baseline === null ? null : round(baseline, 3),
      ratio: baseline ? round(value / baseline, 3) : null,
      target: first.target ?? null,
      met: first.meets && Number.isFinite(value) ? first.meets(value, baseline ?? undefined) : null,
      repetitions: samples.length,
      spread: spread(values),
      baselineSpread: baselines.length > 0 ? spread(baselines) : null,
      values,
      baselines,
      ...(details.length > 0 ? { details } : {}),
    };
  });
}

export async function describeMachine(
  redisUrl: string,
): Promise<{ machine: Record<string, unknown>; versions: Record<string, string> }> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const info = await redis.info('server').finally(() => redis.disconnect());
  const pkg = (name: string) => {
    try {
      return (
        JSON.parse(readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as {
          version: string;
        }
      ).version;
    } catch {
      return 'unknown';
    }
  };
  return {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: round(totalmem() / 1024 ** 3, 1),
      platform: `${process.platform} ${process.arch}`,
    },
    versions: {
      node: process.version,
      redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
      bullmq: pkg('bullmq'),
      fastify: pkg('fastify'),
      undici: pkg('undici'),
      ioredis: pkg('ioredis'),
    },
  };
}

export function writeResults(path: string, content: unknown): void {
  mkdirSync(new URL('.', `file://${path}`).pathname, { recursive: true });
  writeFileSync(path, `${JSON.stringify(content, null, 2)}\n`);
}

const fmt = (value: number | null): string => {
  if (value === null || !Number.isFinite(value)) return '—';
  return Math.abs(value) >= 100 ? Math.round(value).toLocaleString('en-US') : String(round(value, 2));
};

/** A Markdown table of the rows: median (spread) against baseline, ratio, target, met. */
export function markdownTable(rows: ResultRow[]): string {
  const lines = [
    '| scenario | Cutout (median) | spread | baseline (median) | ratio | target | met |',
    '|---|---:|---:|---:|---:|---|:-:|',
  ];
  for (const row of rows) {
    const spreadText = row.repetitions > 1 ? `${fmt(row.spread.min)}–${fmt(row.spread.max)}` : '—';
    const met = row.met === null ? '' : row.met ? '✅' : '❌';
    lines.push(
      `| ${row.name} | ${fmt(row.value)} ${row.unit} | ${spreadText} | ${row.baseline === null ? '—' : `${fmt(row.baseline)} ${row.unit}`} | ${fmt(row.ratio)} | ${row.target ?? ''} | ${met} |`,
    );
  }
  return lines.join('\n');
}

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

/** Replaces the generated block of BENCHMARKS.md (between the markers), keeping the prose around it. */
export function updateBenchmarksDoc(path: string, block: string): void {
  const generated = `${START}\n${block}\n${END}`;
  const current = existsSync(path) ? readFileSync(path, 'utf8') : `# Benchmarks\n\n${START}\n${END}\n`;
  const start = current.indexOf(START);
  const end = current.indexOf(END);
  const next =
    start >= 0 && end > start
      ? current.slice(0, start) + generated + current.slice(end + END.length)
      : `${current.trimEnd()}\n\n${generated}\n`;
  writeFileSync(path, next);
}

export function resultsBlock({
  date,
  reps,
  scale,
  machine,
  versions,
  rows,
  file,
}: {
  date: string;
  reps: number;
  scale: number;
  machine: Record<string, unknown>;
  versions: Record<string, string>;
  rows: ResultRow[];
  file: string;
}): string {
  return [
    `Run of ${date}: ${reps} repetitions per scenario${scale === 1 ? '' : `, job counts × ${scale}`}; medians, spread = min–max over the repetitions. Raw: [\`${file}\`](${file}).`,
    '',
    `Machine: ${String(machine.cpus)} cores (${String(machine.cpuModel)}), ${String(machine.memoryGiB)} GiB, ${String(machine.platform)}; Node ${versions.node}, Redis ${versions.redis}, BullMQ ${versions.bullmq}, fastify ${versions.fastify}.`,
    '',
    markdownTable(rows),
  ].join('\n');
}
