// Tunnel suite: a sandbox fork reached directly vs the same fork reached through a local lane (relay + laneway connect), same run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { closedLoop } from '../lib/closed-loop.js';
import { startUpstream, SANDBOX_BODY } from '../lib/contenders.js';
import { WORKLOAD } from '../lib/fixtures.js';
import { CLI, startChild, type Child } from '../lib/procs.js';
import { createSandbox, startControlPlane, startWatchingSidecar, waitRouted } from '../lib/control-plane-lab.js';
import { interleavedRounds } from '../lib/rounds.js';
import { fmt, table, type Percentiles } from '../lib/stats.js';
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

export async function tunnelSuite(ctx: BaseContext): Promise<SuiteResult<{ rows: TunnelRow[] }>> {
  const dir = mkdtempSync(join(tmpdir(), 'laneway-bench-tunnel-'));
  const children: Child[] = [];
  try {
    const baseline = await startUpstream('baseline');
    const fork = await startUpstream('sandbox');
    children.push(baseline.child, fork.child);
    const { child: cp, url: cpUrl } = await startControlPlane(dir, ['--lane-listen', '127.0.0.1:0']);
    children.push(cp);
    await createSandbox(cpUrl, 'bench-direct', { [String(baseline.port)]: `127.0.0.1:${fork.port}` }, { routingKey: DIRECT_KEY });
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

    const { child: sidecar, url } = await startWatchingSidecar(baseline.port, cpUrl);
    children.push(sidecar);
    const subjects: Subject[] = [
      { name: 'fork-direct', key: DIRECT_KEY },
      { name: 'fork-via-tunnel', key: LANE_KEY },
    ];
    // Both routes must be in the sidecar's table before anything is measured.
    for (const s of subjects) await waitRouted(url, s.key, SANDBOX_BODY, s.name);

    const measured = await interleavedRounds(ctx, 'tunnel', 'req/s', subjects, 'fork-direct', CONNECTIONS, (subject, ms, connections) => closedLoop(ctx, url, `tunnel/${subject.name}`, subject.key, SANDBOX_BODY, ms, connections));
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
