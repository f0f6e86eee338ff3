import type { MeterPoint } from './upstream-meter.ts';

/** Successful calls and 429s in each whole second from the first upstream call. */
export interface SecondCounts {
  second: number;
  ok: number;
  rateLimited: number;
}

export interface ChartSeries {
  label: string;
  color: string;
  seconds: SecondCounts[];
}

/** Bins cumulative meter readings into per-second counts, from the first call to `seconds`. */
export function perSecond(points: MeterPoint[], seconds: number): SecondCounts[] {
  const first = points.find((point) => point.total > 0) ?? points[0]!;
  const at = (ms: number): MeterPoint => {
    // The last reading at or before the moment (readings are cumulative).
    let found = first;
    for (const point of points) if (point.at <= ms) found = point;
    return found;
  };
  const origin = first.at;
  const counts: SecondCounts[] = [];
  for (let second = 0; second < seconds; second++) {
    const from = second === 0 ? { ok: 0, rateLimited: 0 } : at(origin + second * 1000);
    const to = at(origin + (second + 1) * 1000);
    counts.push({ second, ok: to.ok - from.ok, rateLimited: to.rateLimited - from.rateLimited });
  }
  return counts;
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A line chart as plain SVG: successful upstream calls per second per series, the limit
 * as a dashed line (it may change during a run), and each second with 429s marked by a
 * cross on its series' line, sized by how many.
 */
export function rateChartSvg({
  title,
  series,
  limit,
  width = 760,
  height = 400,
}: {
  title: string;
  series: ChartSeries[];
  limit: (second: number) => number;
  width?: number;
  height?: number;
}): string {
  const margin = { left: 52, right: 16, top: 36, bottom: 116 };
  const seconds = Math.max(...series.map((s) => s.seconds.length));
  const top =
    Math.max(
      ...series.flatMap((s) => s.seconds.map((c) => c.ok)),
      ...Array.from({ length: seconds }, (_, i) => limit(i)),
    ) * 1.15;
  const x = (second: number) => margin.left + (second / seconds) * (width - margin.left - margin.right);
  const y = (value: number) => height - margin.bottom - (value / top) * (height - margin.top - margin.bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
  ];
  const step = top > 100 ? 20 : top > 40 ? 10 : 5;
  for (let value = 0; value <= top; value += step) {
    parts.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${y(value)}" y2="${y(value)}" stroke="#eee"/>`,
      `<text x="${margin.left - 6}" y="${y(value) + 4}" text-anchor="end">${value}</text>`,
    );
  }
  for (let second = 0; second <= seconds; second += 5) {
    parts.push(`<text x="${x(second)}" y="${height - margin.bottom + 16}" text-anchor="middle">${second}</text>`);
  }
  parts.push(
    `<text x="${(margin.left + width - margin.right) / 2}" y="${height - margin.bottom + 32}" text-anchor="middle">seconds since the first upstream call</text>`,
    `<text x="14" y="${(margin.top + height - margin.bottom) / 2}" transform="rotate(-90 14 ${(margin.top + height - margin.bottom) / 2})" text-anchor="middle">successful calls/s</text>`,
  );
  const limitPath = Array.from(
    { length: seconds + 1 },
    (_, second) => `${second === 0 ? 'M' : 'L'}${x(second)},${y(limit(Math.min(second, seconds - 1)))}`,
  ).join(' ');
  parts.push(`<path d="${limitPath}" fill="none" stroke="#444" stroke-dasharray="6 4"/>`);
  for (const s of series) {
    const path = s.seconds.map((c, i) => `${i === 0 ? 'M' : 'L'}${x(c.second + 0.5)},${y(c.ok)}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const c of s.seconds.filter((count) => count.rateLimited > 0)) {
      const r = Math.min(7, 2 + Math.sqrt(c.rateLimited));
      const cx = x(c.second + 0.5);
      const cy = y(c.ok);
      parts.push(
        `<path d="M${cx - r},${cy - r} L${cx + r},${cy + r} M${cx - r},${cy + r} L${cx + r},${cy - r}" stroke="${s.color}" stroke-width="1.5"><title>${c.rateLimited} × 429</title></path>`,
      );
    }
  }
  const legend = [
    ...series.map((s) => ({ label: s.label, color: s.color, dash: '' })),
    { label: 'the limit', color: '#444', dash: '6 4' },
  ];
  // One legend entry a line, under the axis title; then what the crosses mean.
  legend.forEach((entry, i) => {
    const lx = margin.left;
    const ly = height - margin.bottom + 52 + i * 15;
    parts.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${entry.color}" stroke-width="2"${entry.dash ? ` stroke-dasharray="${entry.dash}"` : ''}/>`,
      `<text x="${lx + 28}" y="${ly}">${escapeXml(entry.label)}</text>`,
    );
  });
  parts.push(
    `<text x="${width - margin.right}" y="${height - margin.bottom + 52}" text-anchor="end" fill="#666">× on a line: a second with 429s (larger: more)</text>`,
    '</svg>',
  );
  return `${parts.join('\n')}\n`;
}
