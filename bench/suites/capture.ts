// Capture suite: the same fork reached through the same sidecar for a sandbox without capture and one with it, same run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { closedLoop } from '../lib/closed-loop.js';
import { startUpstream, SANDBOX_BODY } from '../lib/contenders.js';
import { createSandbox, startControlPlane, startWatchingSidecar, waitRouted } from '../lib/control-plane-lab.js';
import { cpuSeconds, type Child } from '../lib/procs.js';
import { interleavedRounds } from '../lib/rounds.js';
import { fmt, median, table, type Percentiles } from '../lib/stats.js';
import type { BaseContext, SuiteResult } from '../lib/suite.js';

const CONNECTIONS = 32;
/** Body preview kept per exchange for the capturing subject: what a sandbox asking for bodies pays. */
const BODY_BYTES = 1024;

export interface CaptureRow {
  readonly name: 'capture-off' | 'capture-on';
  readonly requestsPerSecond: number;
  readonly vsOff: number;
  readonly latency: Percentiles;
  readonly addedP50Us: number | null;
  readonly addedP99Us: number | null;
  /** CPU µs per request, medians over the throughput rounds */
  readonly sidecarCpuUs: number;
  readonly controlPlaneCpuUs: number;
}

export async function captureSuite(ctx: BaseContext): Promise<SuiteResult<{ rows: CaptureRow[]; recorded: number; dropped: number }>> {
  const dir = mkdtempSync(join(tmpdir(), 'laneway-bench-capture-'));
  const children: Child[] = [];
  try {
    const baseline = await startUpstream('baseline');
    const fork = await startUpstream('sandbox');
    children.push(baseline.child, fork.child);
    const { child: cp, url: cpUrl } = await startControlPlane(dir);
    children.push(cp);
    const targets = { [String(baseline.port)]: `127.0.0.1:${fork.port}` };
    const subjects = [
      { name: 'capture-off', key: 'benchcaptureoff00001' },
      { name: 'capture-on', key: 'benchcaptureon000001' },
    ] as const;
    await createSandbox(cpUrl, 'bench-capture-off', targets, { routingKey: subjects[0].key });
    await createSandbox(cpUrl, 'bench-capture-on', targets, { routingKey: subjects[1].key, capture: { bodyBytes: BODY_BYTES } });
    const { child: sidecar, url, admin } = await startWatchingSidecar(baseline.port, cpUrl);
    children.push(sidecar);
    for (const s of subjects) await waitRouted(url, s.key, SANDBOX_BODY, s.name);

    // CPU per request of the sidecar and of the control plane (which ingests the records), per throughput round:
    // steadier than throughput on a shared machine, and it tells which side pays.
    const cpu = new Map<string, { sidecar: number[]; controlPlane: number[] }>(subjects.map((s) => [s.name, { sidecar: [], controlPlane: [] }]));
    const measured = await interleavedRounds(ctx, 'capture', 'req/s', subjects, 'capture-off', CONNECTIONS, async (s, ms, connections) => {
      const before = [cpuSeconds(sidecar.pid), cpuSeconds(cp.pid)] as const;
      const result = await closedLoop(ctx, url, `capture/${s.name}`, s.key, SANDBOX_BODY, ms, connections);
      const requests = (result.rate * ms) / 1000;
      if (connections === CONNECTIONS && requests > 0) {
        cpu.get(s.name)!.sidecar.push(((cpuSeconds(sidecar.pid) - before[0]) * 1e6) / requests);
        cpu.get(s.name)!.controlPlane.push(((cpuSeconds(cp.pid) - before[1]) * 1e6) / requests);
      }
      return result;
    });
    const rows: CaptureRow[] = measured.rows.map(({ rate, vsReference, ...rest }) => ({
      ...rest,
      requestsPerSecond: rate,
      vsOff: vsReference,
      sidecarCpuUs: median(cpu.get(rest.name)!.sidecar),
      controlPlaneCpuUs: median(cpu.get(rest.name)!.controlPlane),
    }));
    // The records must have arrived: a capture that silently records nothing would bench as free.
    await new Promise((r) => setTimeout(r, 500));
    const page = (await (await request(`${cpUrl}/v1/sandboxes/bench-capture-on/traffic?limit=1000`)).body.json()) as { lastSeq: number };
    const metrics = await (await request(`${admin}/metrics`)).body.text();
    const dropped = Number(/^laneway_capture_dropped_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    if (page.lastSeq === 0) ctx.fail('capture: the control plane received no captured exchange');
    const on = rows[1]!;
    const cost = 1 - on.vsOff;
    const markdown = [
      `One sidecar, one fork, two sandboxes: \`capture-off\` and \`capture-on\` (\`spec.capture\` with ${BODY_BYTES}-byte body previews; the sidecar records every exchange, redacts, queues and ships batches to the control plane). Throughput: ${CONNECTIONS} keep-alive connections, closed loop; latency: one connection. ${measured.rounds} interleaved round(s) of ${measured.roundMs / 1000} s; medians; every answer checked. Entries the control plane received for the capturing sandbox: ${fmt(page.lastSeq)} (ring keeps the newest 1,000); records the sidecar dropped (queue full): ${fmt(dropped)}.`,
      '',
      table(
        ['sandbox', 'req/s', 'vs capture off', 'p50 µs', 'p99 µs', 'added p50 µs', 'added p99 µs', 'sidecar CPU µs/req', 'control plane CPU µs/req'],
        rows.map((r) => [
          r.name,
          fmt(r.requestsPerSecond),
          `${r.vsOff.toFixed(2)}×`,
          fmt(r.latency.p50),
          fmt(r.latency.p99),
          r.addedP50Us === null ? '–' : fmt(r.addedP50Us),
          r.addedP99Us === null ? '–' : fmt(r.addedP99Us),
          fmt(r.sidecarCpuUs),
          fmt(r.controlPlaneCpuUs),
        ]),
      ),
      '',
      `Goal (issue 14): capture costs ≤ 10% throughput — ${cost <= 0.1 ? 'met' : 'missed'} (${(cost * 100).toFixed(1)}%). Sidecar CPU per request: ${((on.sidecarCpuUs / rows[0]!.sidecarCpuUs - 1) * 100).toFixed(1)}% more with capture; the control plane's ingest: ${fmt(on.controlPlaneCpuUs)} µs per captured request (same two cores here; another node in a cluster).`,
    ].join('\n');
    return { name: 'capture', data: { rows, recorded: page.lastSeq, dropped }, markdown };
  } finally {
    await Promise.all(children.reverse().map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
