// Cost suite: CPU seconds per 1,000 requests and peak RSS of a fresh sidecar holding 10,000 routes at a steady 1,000 req/s, beside the other proxies.
import { Pool } from 'undici';
import { startSidecar } from '../lib/contenders.js';
import { ROUTE_COUNT, SANDBOX_HEADERS } from '../lib/fixtures.js';
import { openLoop, type Target } from '../lib/load.js';
import { cpuSeconds, memory, sleep, type Child } from '../lib/procs.js';
import { fmt, median, nsHistogram, table } from '../lib/stats.js';
import type { SuiteContext, SuiteResult } from '../lib/suite.js';

export interface CostRow {
  readonly name: string;
  /** CPU seconds (user + system) of the server under test per 1,000 requests, median over rounds */
  readonly cpuSecondsPer1k: number;
  /** highest RSS sampled every 100 ms during the load, MB */
  readonly peakRssMb: number;
}

export interface CostData {
  readonly rate: number;
  readonly durationS: number;
  readonly roundCount: number;
  readonly routes: number;
  /** the fresh sidecar: RSS after loading 10,000 routes, before traffic; and its kernel peak (VmHWM) at the end */
  readonly sidecarIdleRssMb: number;
  readonly sidecarHwmMb: number;
  readonly rows: readonly CostRow[];
}

const MB = 1024 * 1024;

async function measure(ctx: SuiteContext, server: Child, target: Target & { readonly port: number }, rate: number, durationS: number): Promise<{ cpuPer1k: number; peakRss: number }> {
  const pool = new Pool(`http://127.0.0.1:${target.port}`, { connections: 16, pipelining: 1 });
  let peakRss = memory(server.pid).rss;
  // RSS is sampled while the load runs: VmHWM alone would also count start-up (parsing the routes file).
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, memory(server.pid).rss);
  }, 100);
  const before = cpuSeconds(server.pid);
  const requests = Math.round(rate * durationS);
  try {
    await openLoop(ctx, pool, target, rate, durationS, nsHistogram());
  } finally {
    clearInterval(sampler);
    await pool.close();
  }
  const cpu = cpuSeconds(server.pid) - before;
  peakRss = Math.max(peakRss, memory(server.pid).rss);
  return { cpuPer1k: (cpu * 1000) / requests, peakRss };
}

export async function cost(ctx: SuiteContext): Promise<SuiteResult<CostData>> {
  const rate = 1_000;
  const durationS = ctx.quick ? 1 : 10;
  const roundCount = ctx.quick ? 1 : 3;
  const lab = ctx.lab;
  // A fresh sidecar, so its peak RSS is this load's and not the throughput suite's 32 connections.
  const fresh = await startSidecar(lab.baselinePort, lab.routesFile);
  try {
    await sleep(500); // let start-up garbage be collected before the idle figure
    const idleRss = memory(fresh.child.pid).rss;
    const targets = [
      { name: 'laneway-sandbox', server: fresh.child, target: { name: 'laneway-sandbox', port: fresh.port, headers: SANDBOX_HEADERS, expectBody: 'sandbox' } },
      ...lab.contenders.filter((c) => c.name === 'http-proxy' || c.name === 'nginx').map((c) => ({ name: c.name, server: c.server, target: c })),
    ];
    // Warm-up: a fresh process's first thousand requests pay for JIT compilation (≈ 1 CPU-s per 1,000 here).
    for (const t of targets) await measure(ctx, t.server, t.target, rate, ctx.quick ? 0.5 : 3);
    const runs = new Map<string, { cpuPer1k: number; peakRss: number }[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < roundCount; round++) {
      for (const t of targets) runs.get(t.name)!.push(await measure(ctx, t.server, t.target, rate, durationS));
      ctx.log(`cost round ${round + 1}/${roundCount} done`);
    }
    const hwm = memory(fresh.child.pid).peak;
    const rows: CostRow[] = targets.map((t) => {
      const r = runs.get(t.name)!;
      return { name: t.name, cpuSecondsPer1k: median(r.map((x) => x.cpuPer1k)), peakRssMb: Math.max(...r.map((x) => x.peakRss)) / MB };
    });
    const markdown = [
      `Open loop at ${rate.toLocaleString('en-US')} req/s of the realistic sandbox request, ${roundCount} interleaved round(s) of ${durationS} s after a warm-up. The sidecar is a fresh process with ${ROUTE_COUNT.toLocaleString('en-US')} routes loaded; CPU is user + system time from \`/proc/<pid>/stat\`, RSS sampled every 100 ms from \`/proc/<pid>/status\`.`,
      '',
      table(
        ['server', 'CPU s / 1k req', 'peak RSS MB'],
        rows.map((r) => [r.name, fmt(r.cpuSecondsPer1k), fmt(r.peakRssMb)]),
      ),
      '',
      `Sidecar RSS with ${ROUTE_COUNT.toLocaleString('en-US')} routes before traffic: ${fmt(idleRss / MB)} MB; kernel high-water mark (VmHWM, includes start-up) at the end: ${fmt(hwm / MB)} MB.`,
    ].join('\n');
    return {
      name: 'cost',
      data: { rate, durationS, roundCount, routes: ROUTE_COUNT, sidecarIdleRssMb: idleRss / MB, sidecarHwmMb: hwm / MB, rows },
      markdown,
    };
  } finally {
    await fresh.child.stop();
  }
}
