// Latency suite: a closed loop on one keep-alive connection timed in ns, and an open loop at a fixed 1,000 req/s; added latency = contender − direct, same round.
import { Client, Pool } from 'undici';
import { closedLoop, openLoop } from '../lib/load.js';
import type { Contender } from '../lib/contenders.js';
import { fmt, medianPercentiles, nsHistogram, percentilesUs, table, type Percentiles } from '../lib/stats.js';
import { interleaved, type SuiteContext, type SuiteResult } from '../lib/suite.js';

export interface LatencyRow {
  readonly name: string;
  /** absolute latency, µs, median over rounds */
  readonly latency: Percentiles;
  /** contender − direct in the same round, µs, median over rounds */
  readonly added: Percentiles;
}

export interface LatencyData {
  readonly closed: { readonly requestsPerRound: number; readonly roundCount: number; readonly rows: readonly LatencyRow[] };
  readonly open: { readonly rate: number; readonly durationS: number; readonly roundCount: number; readonly connections: number; readonly rows: readonly LatencyRow[] };
}

function rowsFrom(contenders: readonly Contender[], rounds: Map<string, Percentiles[]>): LatencyRow[] {
  const direct = rounds.get('direct')!;
  return contenders.map((c) => {
    const mine = rounds.get(c.name)!;
    const added = mine.map((p, i) => ({ p50: p.p50 - direct[i]!.p50, p99: p.p99 - direct[i]!.p99, p999: p.p999 - direct[i]!.p999 }));
    return { name: c.name, latency: medianPercentiles(mine), added: medianPercentiles(added) };
  });
}

function latencyTable(rows: readonly LatencyRow[]): string {
  return table(
    ['contender', 'p50 µs', 'p99 µs', 'p99.9 µs', 'added p50 µs', 'added p99 µs', 'added p99.9 µs'],
    rows.map((r) => [
      r.name,
      fmt(r.latency.p50),
      fmt(r.latency.p99),
      fmt(r.latency.p999),
      r.name === 'direct' ? '–' : fmt(r.added.p50),
      r.name === 'direct' ? '–' : fmt(r.added.p99),
      r.name === 'direct' ? '–' : fmt(r.added.p999),
    ]),
  );
}

export async function latency(ctx: SuiteContext): Promise<SuiteResult<LatencyData>> {
  const contenders = interleaved(ctx.lab.contenders);
  const perRound = ctx.quick ? 500 : 10_000;
  const roundCount = ctx.quick ? 1 : 5;
  const maxRoundMs = ctx.quick ? 1_000 : 4_000;

  // --- closed loop, one connection ---------------------------------------------------------------
  const clients = new Map(contenders.map((c) => [c.name, new Client(`http://127.0.0.1:${c.port}`, { pipelining: 1 })]));
  const closedRounds = new Map<string, Percentiles[]>(contenders.map((c) => [c.name, []]));
  try {
    for (const c of contenders) await closedLoop(ctx, clients.get(c.name)!, c, ctx.quick ? 200 : 2_000, null, 2_000);
    for (let round = 0; round < roundCount; round++) {
      for (const c of contenders) {
        const h = nsHistogram();
        // Same request count for every contender unless the machine is so slow that the cap cuts in.
        await closedLoop(ctx, clients.get(c.name)!, c, perRound, h, maxRoundMs);
        closedRounds.get(c.name)!.push(percentilesUs(h));
      }
      ctx.log(`latency (closed loop) round ${round + 1}/${roundCount} done`);
    }
  } finally {
    await Promise.all([...clients.values()].map((client) => client.close()));
  }
  const closedRows = rowsFrom(contenders, closedRounds);

  // --- open loop, fixed rate ---------------------------------------------------------------------
  const rate = 1_000;
  const durationS = ctx.quick ? 1 : 5;
  const openRoundCount = ctx.quick ? 1 : 3;
  const connections = 16;
  const pools = new Map(contenders.map((c) => [c.name, new Pool(`http://127.0.0.1:${c.port}`, { connections, pipelining: 1 })]));
  const openRounds = new Map<string, Percentiles[]>(contenders.map((c) => [c.name, []]));
  try {
    for (let round = 0; round < openRoundCount; round++) {
      for (const c of contenders) {
        const h = nsHistogram();
        await openLoop(ctx, pools.get(c.name)!, c, rate, durationS, h);
        openRounds.get(c.name)!.push(percentilesUs(h));
      }
      ctx.log(`latency (open loop ${rate} req/s) round ${round + 1}/${openRoundCount} done`);
    }
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool.close()));
  }
  const openRows = rowsFrom(contenders, openRounds);

  const markdown = [
    `**Closed loop, one keep-alive connection** (undici client, each request timed with \`process.hrtime\` into a \`perf_hooks\` histogram in ns): ${roundCount} interleaved round(s) of ${perRound.toLocaleString('en-US')} requests (or ${maxRoundMs / 1000} s, whichever comes first) after a warm-up. *Added* = contender − direct in the same round; medians over rounds.`,
    '',
    latencyTable(closedRows),
    '',
    `**Open loop at ${rate.toLocaleString('en-US')} req/s** (${connections} connections, each request timed from when it was due, so stalls are not hidden): ${openRoundCount} round(s) of ${durationS} s.`,
    '',
    latencyTable(openRows),
  ].join('\n');
  return {
    name: 'latency',
    data: {
      closed: { requestsPerRound: perRound, roundCount, rows: closedRows },
      open: { rate, durationS, roundCount: openRoundCount, connections, rows: openRows },
    },
    markdown,
  };
}
