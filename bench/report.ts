// Turns one run's results into the issue-4 target checklist, the Markdown report and its SVG chart.
import type { CostData } from './suites/cost.js';
import type { LatencyData } from './suites/latency.js';
import type { MicroData } from './suites/micro.js';
import type { PushData } from './suites/push.js';
import type { ThroughputData } from './suites/throughput.js';
import type { SuiteResult } from './lib/suite.js';
import { fmt, median, table, times } from './lib/stats.js';

export interface Environment {
  readonly date: string;
  readonly node: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly os: string;
  readonly upstream: string;
  readonly quick: boolean;
  readonly skipped: readonly { name: string; reason: string }[];
  /** 1-minute load average when the run started and ended (2 = both cores busy) */
  readonly load: { readonly before: number; readonly after: number };
}

export interface TargetCheck {
  readonly target: string;
  readonly goal: string;
  readonly measured: string;
  /** undefined when the suite did not run */
  readonly met: boolean | undefined;
}

function data<T>(results: readonly SuiteResult[], name: string): T | undefined {
  return results.find((r) => r.name === name && r.skipped === undefined)?.data as T | undefined;
}

/** Every issue-4 target with this run's figure; reported, never enforced (timings on a shared machine are noisy). */
export function checkTargets(results: readonly SuiteResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const tp = data<ThroughputData>(results, 'throughput');
  const row = (name: string): ThroughputData['rows'][number] | undefined => tp?.rows.find((r) => r.name === name);
  const rps = (name: string): number => row(name)?.rps ?? Number.NaN;
  const sandboxRow = row('laneway-sandbox');
  const vsProxy = sandboxRow?.vsHttpProxy ?? Number.NaN;
  checks.push({
    target: 'laneway-sandbox throughput vs http-proxy',
    goal: '≥ 2×',
    measured: `${fmt(vsProxy)}× (medians ${fmt(rps('laneway-sandbox'))} vs ${fmt(rps('http-proxy'))} req/s; CPU per request ${fmt((row('http-proxy')?.cpuMsPer1k ?? Number.NaN) / (sandboxRow?.cpuMsPer1k ?? Number.NaN))}× lower)`,
    met: tp ? vsProxy >= 2 : undefined,
  });
  // nginx has no per-round ratio column; the same per-round logic from the round figures.
  const nginxRounds = row('nginx')?.rounds;
  const vsNginx = nginxRounds && sandboxRow ? median(sandboxRow.rounds.map((v, i) => v / nginxRounds[i]!)) : Number.NaN;
  checks.push({
    target: 'laneway-sandbox throughput vs nginx (same routing)',
    goal: '≥ 1/3 (0.33×)',
    measured: Number.isFinite(vsNginx) ? `${fmt(vsNginx)}× (medians ${fmt(rps('laneway-sandbox'))} vs ${fmt(rps('nginx'))} req/s)` : 'nginx not run',
    met: Number.isFinite(vsNginx) ? vsNginx >= 1 / 3 : undefined,
  });
  const lat = data<LatencyData>(results, 'latency');
  const added = lat?.closed.rows.find((r) => r.name === 'laneway-sandbox')?.added;
  checks.push({ target: 'added latency p50, one connection (laneway-sandbox − direct)', goal: '≤ 100 µs', measured: added ? `${fmt(added.p50)} µs` : '–', met: added ? added.p50 <= 100 : undefined });
  checks.push({ target: 'added latency p99, one connection (laneway-sandbox − direct)', goal: '≤ 400 µs', measured: added ? `${fmt(added.p99)} µs` : '–', met: added ? added.p99 <= 400 : undefined });
  const cost = data<CostData>(results, 'cost');
  const side = cost?.rows.find((r) => r.name === 'laneway-sandbox');
  checks.push({ target: 'sidecar CPU per 1,000 requests at 1,000 req/s', goal: '≤ 0.15 CPU-s', measured: side ? `${fmt(side.cpuSecondsPer1k)} CPU-s` : '–', met: side ? side.cpuSecondsPer1k <= 0.15 : undefined });
  checks.push({ target: 'sidecar peak RSS, 10,000 routes, 1,000 req/s', goal: '≤ 50 MB', measured: side ? `${fmt(side.peakRssMb)} MB` : '–', met: side ? side.peakRssMb <= 50 : undefined });
  const micro = data<MicroData>(results, 'micro');
  const ten = micro?.rows.find((r) => r.name === '10 members');
  const tenSmall = micro?.rows.find((r) => r.name === '10 members, 1-route table');
  checks.push({ target: 'routing decision, 10-member baggage (scan + decide)', goal: '≤ 300 ns', measured: ten ? `${fmt(ten.decisionNs)} ns (key + lookup alone ${fmt(ten.keyLookupNs)} ns)` : '–', met: ten ? ten.decisionNs <= 300 : undefined });
  const flat = ten && tenSmall ? ten.decisionNs / tenSmall.decisionNs : Number.NaN;
  // "Flat" = within 25 % of the 1-route table: a Map lookup stays O(1); more is cache misses, not growth.
  checks.push({ target: 'routing decision flat in table size (10,000 vs 1 route)', goal: '≈ 1× (≤ 1.25×)', measured: Number.isFinite(flat) ? `${fmt(flat)}×` : '–', met: Number.isFinite(flat) ? flat <= 1.25 : undefined });
  const push = data<PushData>(results, 'push');
  // The upsert reaches the watchers before the PUT's own response does (the control plane writes the
  // events, then replies), so "from PUT returning" is ~0; the figure checked is the stricter one from
  // the PUT being sent, which includes the SQLite commit.
  checks.push({
    target: `push to ${push ? push.watchers.toLocaleString('en-US') : '1,000'} watchers, p99 (from the PUT being sent)`,
    goal: '≤ 50 ms',
    measured: push ? `${fmt(push.fromSent.p99)} ms (p50 ${fmt(push.fromSent.p50)} ms, all ${fmt(push.fromSent.max)} ms; after the PUT returned: p99 ${fmt(push.fromReturned.p99)} ms)` : results.find((r) => r.name === 'push')?.skipped ?? '–',
    met: push ? push.fromSent.p99 <= 50 : undefined,
  });
  return checks;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  return table(
    ['target', 'goal', 'measured', 'met'],
    checks.map((c) => [c.target, c.goal, c.measured, c.met === undefined ? 'not run' : c.met ? 'yes' : 'NO']),
  );
}

export function renderMarkdown(env: Environment, results: readonly SuiteResult[], checks: readonly TargetCheck[], chartFile: string | undefined): string {
  const lines = [
    `# Laneway benchmarks — ${env.date}${env.quick ? ' (quick)' : ''}`,
    '',
    `Machine: ${env.cpu}, ${env.cores} cores, ${env.memoryGb} GB, ${env.os}; Node ${env.node}. Load generator, proxies and upstreams share these cores, so absolute figures drift between runs; the ratios to \`direct\`, measured in the same run with contenders interleaved, are what to compare. Load average (1 min) at start / end of this run: ${env.load.before.toFixed(1)} / ${env.load.after.toFixed(1)}.`,
    '',
    `Upstream: ${env.upstream}.`,
    ...(env.skipped.length > 0 ? ['', `Skipped: ${env.skipped.map((s) => `${s.name} (${s.reason})`).join('; ')}.`] : []),
    '',
    '## Targets (issue 4)',
    '',
    targetsTable(checks),
    '',
  ];
  if (chartFile !== undefined) lines.push(`![throughput and latency per contender](${chartFile})`, '');
  for (const r of results) {
    lines.push(`## ${r.name[0]!.toUpperCase()}${r.name.slice(1)}`, '');
    lines.push(r.skipped !== undefined ? `Skipped: ${r.skipped}.` : r.markdown, '');
  }
  return lines.join('\n');
}

const COLORS: Record<string, string> = {
  direct: '#8c8c8c',
  'laneway-baseline': '#2b7bb9',
  'laneway-sandbox': '#134e7c',
  'http-proxy': '#d9822b',
  nginx: '#3a9d5d',
};

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A contender's name under its bars, split at the first '-' onto two lines so neighbours do not overlap. */
function label(x: number, y: number, name: string): string {
  const dash = name.indexOf('-');
  const lines = dash === -1 ? [name] : [name.slice(0, dash), name.slice(dash + 1)];
  return `<text x="${x.toFixed(1)}" y="${y}" text-anchor="middle" font-size="11">${lines.map((l, i) => `<tspan x="${x.toFixed(1)}" dy="${i === 0 ? 0 : 13}">${escape(l)}</tspan>`).join('')}</text>`;
}

/** A two-panel bar chart: req/s per contender, and p50/p99/p99.9 latency on one connection per contender. */
export function renderSvg(env: Environment, results: readonly SuiteResult[]): string | undefined {
  const tp = data<ThroughputData>(results, 'throughput');
  const lat = data<LatencyData>(results, 'latency');
  if (!tp || !lat) return undefined;
  const width = 960;
  const height = 380;
  const panelW = 420;
  const top = 60;
  const plotH = 230;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="20" y="24" font-size="16" font-weight="bold">Laneway sidecar vs direct, http-proxy${tp.rows.some((r) => r.name === 'nginx') ? ' and nginx' : ''} — ${escape(env.date)}</text>`,
    `<text x="20" y="42" fill="#555">${escape(`${env.cpu}, ${env.cores} cores, Node ${env.node}; medians of interleaved rounds`)}</text>`,
  ];
  // Panel 1: throughput.
  const maxRps = Math.max(...tp.rows.map((r) => r.rps));
  const x0 = 40;
  const barW = panelW / tp.rows.length;
  parts.push(`<text x="${x0}" y="${top}" font-weight="bold">Throughput, ${tp.connections} connections (req/s)</text>`);
  tp.rows.forEach((r, i) => {
    const h = (r.rps / maxRps) * (plotH - 40);
    const x = x0 + i * barW + 8;
    const y = top + plotH - h;
    parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 16).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[r.name] ?? '#555'}"/>`);
    parts.push(`<text x="${(x + (barW - 16) / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle">${escape(fmt(r.rps))}</text>`);
    parts.push(label(x + (barW - 16) / 2, top + plotH + 16, r.name));
  });
  parts.push(`<line x1="${x0}" y1="${top + plotH}" x2="${x0 + panelW}" y2="${top + plotH}" stroke="#333"/>`);
  // Panel 2: closed-loop latency percentiles.
  const x1 = 520;
  const rows = lat.closed.rows;
  const maxUs = Math.max(...rows.map((r) => r.latency.p999));
  const groupW = panelW / rows.length;
  const shades = ['1', '0.7', '0.4'];
  parts.push(`<text x="${x1}" y="${top}" font-weight="bold">Latency, one connection (µs): p50 / p99 / p99.9</text>`);
  rows.forEach((r, i) => {
    const values = [r.latency.p50, r.latency.p99, r.latency.p999];
    const bw = (groupW - 12) / 3;
    values.forEach((v, j) => {
      const h = (v / maxUs) * (plotH - 40);
      const x = x1 + i * groupW + 6 + j * bw;
      const y = top + plotH - h;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[r.name] ?? '#555'}" fill-opacity="${shades[j]}"/>`);
      parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle" font-size="9">${escape(fmt(v))}</text>`);
    });
    parts.push(label(x1 + i * groupW + groupW / 2, top + plotH + 16, r.name));
  });
  parts.push(`<line x1="${x1}" y1="${top + plotH}" x2="${x1 + panelW}" y2="${top + plotH}" stroke="#333"/>`);
  const sandbox = rows.find((r) => r.name === 'laneway-sandbox');
  if (sandbox) {
    parts.push(`<text x="${x1}" y="${top + plotH + 52}" fill="#333">laneway-sandbox adds ${escape(fmt(sandbox.added.p50))} µs at p50, ${escape(fmt(sandbox.added.p99))} µs at p99 over direct</text>`);
  }
  const proxyRow = tp.rows.find((r) => r.name === 'http-proxy');
  const laneRow = tp.rows.find((r) => r.name === 'laneway-sandbox');
  if (proxyRow && laneRow) {
    parts.push(`<text x="${x0}" y="${top + plotH + 52}" fill="#333">laneway-sandbox = ${escape(fmt(laneRow.vsHttpProxy))}× http-proxy (median of per-round ratios)</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/**
 * The README's "Performance" section, regenerated by every full run so the README never shows figures
 * the committed results do not back. Paths are relative to the repository root.
 */
export function renderReadmeSection(env: Environment, results: readonly SuiteResult[], checks: readonly TargetCheck[], resultsJson: string): string {
  const tp = data<ThroughputData>(results, 'throughput');
  const lat = data<LatencyData>(results, 'latency');
  const lines = [
    '## Performance',
    '',
    `The sidecar sits on the path of every request, so its overhead is measured on every change: \`npm run bench\` runs ${results.length} suites (${results.map((r) => r.name).join(', ')}) and compares Laneway with a direct connection, [node-http-proxy](https://github.com/http-party/node-http-proxy) (keep-alive agent, the common Node choice) and — when installed — nginx routing on the same baggage key, all in the same run. Latest full run (${env.date}, ${env.cpu}, ${env.cores} cores, Node ${env.node}, ${env.os}; load average ${env.load.before.toFixed(1)} at start — this machine is shared, so read the ratios rather than the absolute figures):`,
    '',
  ];
  if (tp && lat) {
    lines.push(
      table(
        ['contender', 'req/s (32 conns)', 'vs direct', 'vs http-proxy', 'server CPU ms / 1k req', 'added p50 µs (1 conn)', 'added p99 µs (1 conn)'],
        tp.rows.map((r) => {
          const l = lat.closed.rows.find((x) => x.name === r.name);
          const isDirect = r.name === 'direct';
          return [r.name, fmt(r.rps), times(r.vsDirect), times(r.vsHttpProxy), fmt(r.cpuMsPer1k), isDirect || !l ? '–' : fmt(l.added.p50), isDirect || !l ? '–' : fmt(l.added.p99)];
        }),
      ),
      '',
      '![throughput and latency per contender](bench/results/latest.svg)',
      '',
    );
  }
  lines.push(
    'Targets from the benchmark issue, as measured in that run (reported, never enforced: timings here are noisy):',
    '',
    targetsTable(checks),
    '',
    `Full report: [bench/results/latest.md](bench/results/latest.md); raw figures: [${resultsJson}](${resultsJson}).`,
    '',
    '**Reproduce:** `npm run bench` (about 7 minutes; writes `bench/results/`, this section to `bench/README.section.md`) or `npm run bench:quick` (under a minute; prints only, and fails only if a contender errors or the sidecar routes wrongly). `apt-get install -y nginx` adds the nginx contender; without it that contender is skipped. `node dist/bench/profile.js [--rate 1000] [--keep <dir>]` profiles the sidecar under load and lists self time by function.',
    '',
    '**Method.**',
    `- Upstream: ${env.upstream} — cheap, so the proxy is what is measured; a second instance is the sandbox fork. Every server under test runs in its own process; the load generator runs in the bench process, on the same ${env.cores} cores.`,
    '- Contenders: `direct` (client → upstream); `laneway-baseline` (sidecar, request without baggage → baseline app); `laneway-sandbox` (sidecar, a realistic 10-member `baggage` header carrying the routing key → the sandbox upstream); `http-proxy` (same request, a regex on `baggage` + a `Map` of the same routes); `nginx` (same request, one worker, `map $http_baggage` regex + hash map of the same routes, upstream keep-alive). The sidecar and the other routers hold 10,000 routes throughout.',
    '- Every response body names the upstream that answered, and every run checks it: a request routed to the wrong place, a non-2xx or a socket error fails the run.',
    '- Contenders are interleaved (A B C … A B C …) after a warm-up, over several rounds; tables show medians over rounds, and ratios to `direct` from the same run.',
    '- Throughput: autocannon, 32 keep-alive connections, no pipelining. Latency: a closed loop on one keep-alive connection with each request timed into a `perf_hooks` histogram in nanoseconds (*added* = contender − direct in the same round), and an open loop at a fixed 1,000 req/s timed from each request\'s due time. Cost: a fresh sidecar with 10,000 routes at 1,000 req/s, CPU from `/proc/<pid>/stat`, RSS sampled every 100 ms. Micro: `scanHeaders` + `Router.decide` in-process, ns/op. Push: a real control plane, 1,000 SSE watchers, time from `PUT /v1/sandboxes/:name` to each watcher having the `upsert` event.',
    '',
  );
  return lines.join('\n');
}
