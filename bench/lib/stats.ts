// Small statistics and formatting helpers: medians over rounds, nanosecond histograms, fixed-width tables.
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Percentiles the latency suites report, in the order they appear in tables. */
export const PERCENTILES = [50, 99, 99.9] as const;
export type Percentiles = { p50: number; p99: number; p999: number };

/** A histogram of nanoseconds (perf_hooks keeps HdrHistogram precision down to 1 ns). */
export function nsHistogram(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: 60e9, figures: 3 });
}

/** p50/p99/p99.9 of a nanosecond histogram, in microseconds. */
export function percentilesUs(h: RecordableHistogram): Percentiles {
  return { p50: h.percentile(50) / 1e3, p99: h.percentile(99) / 1e3, p999: h.percentile(99.9) / 1e3 };
}

export function medianPercentiles(rounds: readonly Percentiles[]): Percentiles {
  return { p50: median(rounds.map((r) => r.p50)), p99: median(rounds.map((r) => r.p99)), p999: median(rounds.map((r) => r.p999)) };
}

/** Rounds for display: 3 significant digits, thousands separated. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return Number(value.toPrecision(digits)).toString();
}

export function times(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : '–';
}

export function ratio(value: number, reference: number): string {
  return Number.isFinite(value) && reference > 0 ? `${(value / reference).toFixed(2)}×` : '–';
}

/** A Markdown table (also readable as plain text on a terminal). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 2)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
