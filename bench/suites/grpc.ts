// gRPC suite: unary calls over h2c, direct vs through the sidecar (baseline and sandbox), interleaved rounds.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { startSidecar } from '../lib/contenders.js';
import { ECHO_SERVICE } from '../lib/grpc-echo.js';
import { routeSnapshot, SANDBOX_HEADERS } from '../lib/fixtures.js';
import { listeningPort, SERVERS, startChild, type Child } from '../lib/procs.js';
import { interleavedRounds } from '../lib/rounds.js';
import { fmt, nsHistogram, percentilesUs, table, type Percentiles } from '../lib/stats.js';
import type { BaseContext, SuiteResult } from '../lib/suite.js';

const Echo = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
type EchoClient = grpc.Client & { unary(req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res: { from: string }) => void): void };

/** Concurrent calls in flight for the throughput figure (like the HTTP suite's 32 connections, on one HTTP/2 connection). */
const CONCURRENCY = 32;

export interface GrpcRow {
  readonly name: string;
  readonly callsPerSecond: number;
  readonly vsDirect: number;
  readonly latency: Percentiles;
  readonly addedP50Us: number | null;
  readonly addedP99Us: number | null;
}

interface Subject {
  readonly name: 'direct' | 'laneway-baseline' | 'laneway-sandbox';
  readonly client: EchoClient;
  readonly metadata: grpc.Metadata;
  readonly expect: string;
}

function call(s: Subject): Promise<string> {
  return new Promise((resolve, reject) => s.client.unary({}, s.metadata, (err, res) => (err ? reject(err) : resolve(res.from))));
}

/** Closed loop, `concurrency` calls in flight for `ms`: calls/s and each call's latency. */
async function drive(ctx: BaseContext, s: Subject, ms: number, concurrency: number): Promise<{ rate: number; latency: Percentiles }> {
  const histogram = nsHistogram();
  const deadline = performance.now() + ms;
  let calls = 0;
  let wrong = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const start = process.hrtime.bigint();
      const from = await call(s);
      histogram.record(Number(process.hrtime.bigint() - start) || 1);
      if (from !== s.expect) wrong++;
      calls++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (wrong > 0) ctx.fail(`grpc/${s.name}: ${wrong} of ${calls} calls answered by the wrong upstream (expected ${s.expect})`);
  return { rate: (calls * 1000) / (performance.now() - started), latency: percentilesUs(histogram) };
}

export async function grpcSuite(ctx: BaseContext): Promise<SuiteResult<{ rows: GrpcRow[] }>> {
  const dir = mkdtempSync(join(tmpdir(), 'laneway-bench-grpc-'));
  const children: Child[] = [];
  const clients: grpc.Client[] = [];
  try {
    const upstream = async (name: string): Promise<number> => {
      const { child, value } = await startChild(`grpc upstream ${name}`, process.execPath, [join(SERVERS, 'grpc-upstream.js'), name], listeningPort);
      children.push(child);
      return value;
    };
    const baselinePort = await upstream('baseline');
    const sandboxPort = await upstream('sandbox');
    const routesFile = join(dir, 'routes.json');
    writeFileSync(routesFile, JSON.stringify(routeSnapshot(`127.0.0.1:${sandboxPort}`, baselinePort)));
    const sidecar = await startSidecar(baselinePort, routesFile);
    children.push(sidecar.child);

    const client = (port: number): EchoClient => {
      const c = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
      clients.push(c);
      return c;
    };
    const keyed = new grpc.Metadata();
    keyed.set('baggage', SANDBOX_HEADERS.baggage as string);
    const subjects: Subject[] = [
      { name: 'direct', client: client(baselinePort), metadata: new grpc.Metadata(), expect: 'baseline' },
      { name: 'laneway-baseline', client: client(sidecar.port), metadata: new grpc.Metadata(), expect: 'baseline' },
      { name: 'laneway-sandbox', client: client(sidecar.port), metadata: keyed, expect: 'sandbox' },
    ];

    const measured = await interleavedRounds(ctx, 'grpc', 'calls/s', subjects, 'direct', CONCURRENCY, (subject, ms, concurrency) => drive(ctx, subject, ms, concurrency));
    const { rounds, roundMs } = measured;
    const rows: GrpcRow[] = measured.rows.map(({ rate, vsReference, ...rest }) => ({ ...rest, callsPerSecond: rate, vsDirect: vsReference }));
    const markdown = [
      `Unary calls with @grpc/grpc-js over h2c to a minimal gRPC server (bench/servers/grpc-upstream.ts, own process). Throughput: ${CONCURRENCY} calls in flight on one channel; latency: one call at a time. ${rounds} interleaved round(s) of ${roundMs / 1000} s after a warm-up; medians over rounds. The sandbox calls carry the realistic 10-member baggage as metadata; every answer is checked to come from the right upstream.`,
      '',
      table(
        ['contender', 'calls/s', 'vs direct', 'p50 µs', 'p99 µs', 'added p50 µs', 'added p99 µs'],
        rows.map((r) => [r.name, fmt(r.callsPerSecond), `${r.vsDirect.toFixed(2)}×`, fmt(r.latency.p50), fmt(r.latency.p99), r.addedP50Us === null ? '–' : fmt(r.addedP50Us), r.addedP99Us === null ? '–' : fmt(r.addedP99Us)]),
      ),
    ].join('\n');
    return { name: 'grpc', data: { rows }, markdown };
  } finally {
    for (const c of clients) c.close();
    await Promise.all(children.map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
