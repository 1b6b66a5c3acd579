// Throughput suite: autocannon, 32 keep-alive connections, no pipelining, contenders interleaved over several rounds.
import autocannon from 'autocannon';
import { cpuSeconds } from '../lib/procs.js';
import { fmt, median, table, times } from '../lib/stats.js';
import { interleaved, type SuiteContext, type SuiteResult } from '../lib/suite.js';
import type { Contender } from '../lib/contenders.js';

export const CONNECTIONS = 32;

export interface ThroughputRow {
  readonly name: string;
  /** median over rounds of requests per second */
  readonly rps: number;
  readonly rounds: readonly number[];
  /** autocannon's latency (whole milliseconds: coarse; the latency suite has the fine figures) */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU milliseconds the server under test spent per 1,000 requests, at saturation */
  readonly cpuMsPer1k: number;
  /**
   * Median over rounds of this contender's req/s divided by the reference's in the same round: on a
   * shared machine, neighbours in time see the same interference, so per-round ratios are steadier
   * than a ratio of medians.
   */
  readonly vsDirect: number;
  readonly vsHttpProxy: number;
}

export interface ThroughputData {
  readonly connections: number;
  readonly durationS: number;
  readonly roundCount: number;
  readonly rows: readonly ThroughputRow[];
}

interface OneRun {
  rps: number;
  p50: number;
  p99: number;
  cpuMsPer1k: number;
}

async function runOnce(ctx: SuiteContext, c: Contender, durationS: number): Promise<OneRun> {
  const cpuBefore = cpuSeconds(c.server.pid);
  const result = await autocannon({
    url: `http://127.0.0.1:${c.port}/`,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: durationS,
    headers: { ...c.headers },
    expectBody: c.expectBody,
    timeout: 10,
  });
  const cpu = cpuSeconds(c.server.pid) - cpuBefore;
  const total = result.requests.total;
  const bad = result.errors + result.timeouts + result.non2xx + result.mismatches;
  if (bad > 0 || total === 0) {
    ctx.fail(`throughput/${c.name}: ${total} requests, ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx, ${result.mismatches} wrong upstream (expected body '${c.expectBody}')`);
  }
  return { rps: total / durationS, p50: result.latency.p50, p99: result.latency.p99, cpuMsPer1k: total > 0 ? (cpu * 1e6) / total : Number.NaN };
}

export async function throughput(ctx: SuiteContext): Promise<SuiteResult<ThroughputData>> {
  const durationS = ctx.quick ? 1 : 5;
  const roundCount = ctx.quick ? 1 : 5;
  const contenders = interleaved(ctx.lab.contenders);
  // Warm-up: JIT, connection pools and the upstreams' sockets are hot before anything is recorded.
  for (const c of contenders) await runOnce(ctx, c, ctx.quick ? 1 : 3);
  const runs = new Map<string, OneRun[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < roundCount; round++) {
    for (const c of contenders) {
      const run = await runOnce(ctx, c, durationS);
      runs.get(c.name)!.push(run);
      ctx.log(`throughput round ${round + 1}/${roundCount} ${c.name}: ${fmt(run.rps)} req/s`);
    }
  }
  const perRound = (name: string, ref: string): number => {
    const mine = runs.get(name)!;
    const theirs = runs.get(ref);
    return theirs === undefined ? Number.NaN : median(mine.map((x, i) => x.rps / theirs[i]!.rps));
  };
  const rows: ThroughputRow[] = contenders.map((c) => {
    const r = runs.get(c.name)!;
    return {
      name: c.name,
      rps: median(r.map((x) => x.rps)),
      rounds: r.map((x) => Math.round(x.rps)),
      p50Ms: median(r.map((x) => x.p50)),
      p99Ms: median(r.map((x) => x.p99)),
      cpuMsPer1k: median(r.map((x) => x.cpuMsPer1k)),
      vsDirect: perRound(c.name, 'direct'),
      vsHttpProxy: perRound(c.name, 'http-proxy'),
    };
  });
  const markdown = [
    `${CONNECTIONS} keep-alive connections, no pipelining, ${roundCount} interleaved round(s) of ${durationS} s after a warm-up; median req/s over rounds; ratios are medians of the per-round ratios. CPU is the server under test's own (the upstream for \`direct\`).`,
    '',
    table(
      ['contender', 'req/s', 'vs direct', 'vs http-proxy', 'p50 ms', 'p99 ms', 'server CPU ms / 1k req', 'rounds'],
      rows.map((r) => [r.name, fmt(r.rps), times(r.vsDirect), times(r.vsHttpProxy), fmt(r.p50Ms), fmt(r.p99Ms), fmt(r.cpuMsPer1k), r.rounds.join(' ')]),
    ),
  ].join('\n');
  return { name: 'throughput', data: { connections: CONNECTIONS, durationS, roundCount, rows }, markdown };
}
