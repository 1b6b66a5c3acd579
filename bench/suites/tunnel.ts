// Tunnel suite: a sandbox fork reached directly vs the same fork reached through a local lane (relay + laneway connect), same run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { startUpstream, SANDBOX_BODY } from '../lib/contenders.js';
import { WORKLOAD } from '../lib/fixtures.js';
import { CLI, freePort, httpReady, startChild, type Child } from '../lib/procs.js';
import { interleavedRounds } from '../lib/rounds.js';
import { fmt, nsHistogram, percentilesUs, table, type Percentiles } from '../lib/stats.js';
import type { BaseContext, SuiteResult } from '../lib/suite.js';

/** Connections for the throughput figure, as in the HTTP throughput suite. */
const CONNECTIONS = 32;
const DIRECT_KEY = 'benchdirectfork000001';
const LANE_KEY = 'benchlocalfork0000001';

export interface TunnelRow {
  readonly name: 'fork-direct' | 'fork-via-tunnel';
  readonly requestsPerSecond: number;
  readonly vsDirect: number;
  readonly latency: Percentiles;
  readonly addedP50Us: number | null;
  readonly addedP99Us: number | null;
}

interface Subject {
  readonly name: TunnelRow['name'];
  readonly key: string;
}

/** Closed loop on `connections` connections for `ms`: requests/s and each request's latency; every answer must come from the fork. */
async function drive(ctx: BaseContext, url: string, s: Subject, ms: number, connections: number): Promise<{ rate: number; latency: Percentiles }> {
  const pool = new Pool(url, { connections, pipelining: 1 });
  const histogram = nsHistogram();
  const headers = { baggage: `laneway=${s.key}` };
  const deadline = performance.now() + ms;
  let count = 0;
  let wrong = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const start = process.hrtime.bigint();
      const { statusCode, body } = await pool.request({ path: '/', method: 'GET', headers });
      const text = await body.text();
      histogram.record(Number(process.hrtime.bigint() - start) || 1);
      if (statusCode !== 200 || text !== SANDBOX_BODY) wrong++;
      count++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = performance.now() - started;
  await pool.close();
  if (wrong > 0) ctx.fail(`tunnel/${s.name}: ${wrong} of ${count} requests not answered 200 by the fork`);
  return { rate: (count * 1000) / elapsed, latency: percentilesUs(histogram) };
}

export async function tunnelSuite(ctx: BaseContext): Promise<SuiteResult<{ rows: TunnelRow[] }>> {
  const dir = mkdtempSync(join(tmpdir(), 'laneway-bench-tunnel-'));
  const children: Child[] = [];
  try {
    const baseline = await startUpstream('baseline');
    const fork = await startUpstream('sandbox');
    children.push(baseline.child, fork.child);
    const { child: cp, value: cpUrl } = await startChild(
      'laneway control-plane',
      process.execPath,
      [CLI, 'control-plane', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), '--lane-listen', '127.0.0.1:0', '--probe-interval', '0', '--log-level', 'warn'],
      (out) => /listening on (http:\/\/\S+:\d+)/.exec(out)?.[1],
    );
    children.push(cp);
    const put = await request(`${cpUrl}/v1/sandboxes/bench-direct`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ spec: { routingKey: DIRECT_KEY, forks: [{ workload: WORKLOAD, targets: { [String(baseline.port)]: `127.0.0.1:${fork.port}` } }] } }),
    });
    await put.body.text();
    if (put.statusCode !== 201) throw new Error(`creating the direct sandbox answered ${put.statusCode}`);
    // The same fork process, reached through laneway connect: only the path differs.
    const { child: lane } = await startChild(
      'laneway connect',
      'env',
      [`XDG_STATE_HOME=${dir}`, process.execPath, CLI, 'connect', '--server', cpUrl, '--sandbox', 'bench-local', '--workload', WORKLOAD, '--port', `${baseline.port}=127.0.0.1:${fork.port}`],
      (out) => (/routing key: /.test(out) ? true : undefined),
    );
    children.push(lane);
    // The local sandbox gets a generated key; fix it so both subjects carry keys of one length.
    const local = await request(`${cpUrl}/v1/sandboxes/bench-local`);
    const spec = ((await local.body.json()) as { spec: Record<string, unknown> }).spec;
    const relabel = await request(`${cpUrl}/v1/sandboxes/bench-local`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ spec: { ...spec, routingKey: LANE_KEY } }) });
    await relabel.body.text();

    const port = await freePort();
    const adminPort = await freePort();
    const { child: sidecar } = await startChild(
      'laneway sidecar',
      process.execPath,
      [CLI, 'sidecar', '--workload', WORKLOAD, '--port', `${port}:${baseline.port}`, '--control-plane', cpUrl, '--admin', `127.0.0.1:${adminPort}`, '--log-level', 'warn'],
      () => httpReady(`http://127.0.0.1:${adminPort}/readyz`),
    );
    children.push(sidecar);
    const url = `http://127.0.0.1:${port}`;
    const subjects: Subject[] = [
      { name: 'fork-direct', key: DIRECT_KEY },
      { name: 'fork-via-tunnel', key: LANE_KEY },
    ];
    // Both routes must be in the sidecar's table before anything is measured.
    for (const s of subjects) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const res = await request(url, { headers: { baggage: `laneway=${s.key}` } });
        if ((await res.body.text()) === SANDBOX_BODY) break;
        if (Date.now() > deadline) throw new Error(`${s.name}: the sidecar never routed to the fork`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    const measured = await interleavedRounds(ctx, 'tunnel', 'req/s', subjects, 'fork-direct', CONNECTIONS, (subject, ms, connections) => drive(ctx, url, subject, ms, connections));
    const { rounds, roundMs } = measured;
    const rows: TunnelRow[] = measured.rows.map(({ rate, vsReference, ...rest }) => ({ ...rest, requestsPerSecond: rate, vsDirect: vsReference }));
    const tunnel = rows[1]!;
    const markdown = [
      `The same fork process reached by the sidecar directly (\`fork-direct\`) and through a local lane (\`fork-via-tunnel\`: sidecar → CONNECT to the lane relay in the control plane → one stream of the HTTP/2 tunnel per connection → \`laneway connect\` → fork), all on 127.0.0.1. Throughput: ${CONNECTIONS} keep-alive connections, closed loop; latency: one connection, one request at a time. ${rounds} interleaved round(s) of ${roundMs / 1000} s after a warm-up; medians over rounds; every answer checked to come from the fork.`,
      '',
      table(
        ['path', 'req/s', 'vs direct fork', 'p50 µs', 'p99 µs', 'added p50 µs', 'added p99 µs'],
        rows.map((r) => [r.name, fmt(r.requestsPerSecond), `${r.vsDirect.toFixed(2)}×`, fmt(r.latency.p50), fmt(r.latency.p99), r.addedP50Us === null ? '–' : fmt(r.addedP50Us), r.addedP99Us === null ? '–' : fmt(r.addedP99Us)]),
      ),
      '',
      `Goals (issue 13): added p50 ≤ 1,000 µs — ${tunnel.addedP50Us! <= 1000 ? 'met' : 'missed'} (${fmt(tunnel.addedP50Us!)} µs); throughput ≥ 0.5× the direct fork — ${tunnel.vsDirect >= 0.5 ? 'met' : 'missed'} (${tunnel.vsDirect.toFixed(2)}×).`,
    ].join('\n');
    return { name: 'tunnel', data: { rows }, markdown };
  } finally {
    await Promise.all(children.reverse().map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
