// Translation suite: HTTP/1.1 ↔ h2c translated paths next to the native ones and to direct calls, same run, interleaved rounds.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http2, { type ClientHttp2Session } from 'node:http2';
import { closedLoop } from '../lib/closed-loop.js';
import { startUpstream } from '../lib/contenders.js';
import { WORKLOAD } from '../lib/fixtures.js';
import { CLI, freePort, httpReady, listeningPort, SERVERS, startChild, type Child } from '../lib/procs.js';
import { interleavedRounds } from '../lib/rounds.js';
import { fmt, nsHistogram, percentilesUs, table, type Percentiles } from '../lib/stats.js';
import type { BaseContext, SuiteResult } from '../lib/suite.js';

/** Requests in flight for the throughput figure: 32 keep-alive connections (HTTP/1.1) or 32 streams on one connection (h2c). */
const CONCURRENCY = 32;
/** A key no route has: every request takes the baseline path, after the same header scan as a keyed one. */
const NO_ROUTE_KEY = 'benchnoroute000000001';

type SubjectName = 'direct http1' | 'direct h2c' | 'http1 → http1 (native)' | 'http1 → h2c (translated)' | 'h2c → h2c (native)' | 'h2c → http1 (translated)';

export interface TranslateRow {
  readonly name: SubjectName;
  readonly requestsPerSecond: number;
  /** throughput over the direct call in the client's protocol */
  readonly vsDirect: number;
  readonly latency: Percentiles;
  /** p50 over the direct call in the client's protocol */
  readonly addedP50Us: number | null;
  readonly addedP99Us: number | null;
}

interface Subject {
  readonly name: SubjectName;
  readonly client: 'http1' | 'h2c';
  readonly port: number;
  readonly expect: string;
}

/** Closed loop on one h2c connection, `concurrency` streams in flight for `ms`; every answer checked. */
async function h2Loop(ctx: BaseContext, session: ClientHttp2Session, s: Subject, ms: number, concurrency: number): Promise<{ rate: number; latency: Percentiles }> {
  const histogram = nsHistogram();
  const headers = { ':path': '/', baggage: `laneway=${NO_ROUTE_KEY}` };
  const deadline = performance.now() + ms;
  let count = 0;
  let wrong = 0;
  const one = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const stream = session.request(headers, { endStream: true });
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (text += c));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
    });
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const start = process.hrtime.bigint();
      const text = await one();
      histogram.record(Number(process.hrtime.bigint() - start) || 1);
      if (text !== s.expect) wrong++;
      count++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (wrong > 0) ctx.fail(`translate/${s.name}: ${wrong} of ${count} requests not answered by ${s.expect}`);
  return { rate: (count * 1000) / (performance.now() - started), latency: percentilesUs(histogram) };
}

export async function translateSuite(ctx: BaseContext): Promise<SuiteResult<{ rows: TranslateRow[] }>> {
  const dir = mkdtempSync(join(tmpdir(), 'laneway-bench-translate-'));
  const children: Child[] = [];
  const sessions: ClientHttp2Session[] = [];
  try {
    const h1 = await startUpstream('h1app');
    children.push(h1.child);
    const h2 = await startChild('h2c upstream', process.execPath, [join(SERVERS, 'h2c-upstream.js'), 'h2app'], listeningPort);
    children.push(h2.child);
    const routesFile = join(dir, 'routes.json');
    writeFileSync(routesFile, JSON.stringify({ workload: WORKLOAD, revision: 1, routes: [] }));
    // One sidecar, two ports: the HTTP/1.1 app declared /http1, the h2c app /h2c.
    const [p1, p2, adminPort] = [await freePort(), await freePort(), await freePort()];
    const admin = `http://127.0.0.1:${adminPort}`;
    const { child: sidecar } = await startChild(
      'laneway sidecar',
      process.execPath,
      [CLI, 'sidecar', '--workload', WORKLOAD, '--port', `${p1}:${h1.port}/http1`, '--port', `${p2}:${h2.value}/h2c`, '--routes-file', routesFile, '--admin', `127.0.0.1:${adminPort}`, '--log-level', 'warn'],
      () => httpReady(`${admin}/readyz`),
    );
    children.push(sidecar);

    const subjects: Subject[] = [
      { name: 'direct http1', client: 'http1', port: h1.port, expect: 'h1app' },
      { name: 'direct h2c', client: 'h2c', port: h2.value, expect: 'h2app' },
      { name: 'http1 → http1 (native)', client: 'http1', port: p1, expect: 'h1app' },
      { name: 'http1 → h2c (translated)', client: 'http1', port: p2, expect: 'h2app' },
      { name: 'h2c → h2c (native)', client: 'h2c', port: p2, expect: 'h2app' },
      { name: 'h2c → http1 (translated)', client: 'h2c', port: p1, expect: 'h1app' },
    ];
    const sessionOf = new Map<SubjectName, ClientHttp2Session>();
    for (const s of subjects) {
      if (s.client !== 'h2c') continue;
      const session = http2.connect(`http://127.0.0.1:${s.port}`);
      session.on('error', () => {});
      sessions.push(session);
      sessionOf.set(s.name, session);
    }
    const drive = (s: Subject, ms: number, concurrency: number): Promise<{ rate: number; latency: Percentiles }> =>
      s.client === 'http1' ? closedLoop(ctx, `http://127.0.0.1:${s.port}`, `translate/${s.name}`, NO_ROUTE_KEY, s.expect, ms, concurrency) : h2Loop(ctx, sessionOf.get(s.name)!, s, ms, concurrency);

    const measured = await interleavedRounds(ctx, 'translate', 'req/s', subjects, 'direct http1', CONCURRENCY, drive);
    const { rounds, roundMs } = measured;
    // Each subject against the direct call in its client's protocol (interleavedRounds compares with one reference only).
    const direct = new Map(measured.rows.filter((r) => r.name.startsWith('direct')).map((r) => [r.name, r]));
    const rows: TranslateRow[] = measured.rows.map((r) => {
      const client = subjects.find((s) => s.name === r.name)!.client;
      const ref = direct.get(client === 'http1' ? 'direct http1' : 'direct h2c')!;
      const isRef = ref.name === r.name;
      return {
        name: r.name,
        requestsPerSecond: r.rate,
        vsDirect: r.rate / ref.rate,
        latency: r.latency,
        addedP50Us: isRef ? null : r.latency.p50 - ref.latency.p50,
        addedP99Us: isRef ? null : r.latency.p99 - ref.latency.p99,
      };
    });
    const markdown = [
      `One sidecar with an HTTP/1.1 app port (\`/http1\`) and an h2c app port (\`/h2c\`), minimal upstreams in their own processes (bench/servers/upstream.ts, bench/servers/h2c-upstream.ts). HTTP/1.1 clients: ${CONCURRENCY} keep-alive connections (undici); h2c clients: ${CONCURRENCY} streams on one connection; latency: one request at a time. "vs direct" and "added" compare with the direct call in the client's own protocol. ${rounds} interleaved round(s) of ${roundMs / 1000} s after a warm-up; medians over rounds; every answer checked to come from the right app.`,
      '',
      table(
        ['client → app', 'req/s', 'vs direct', 'p50 µs', 'p99 µs', 'added p50 µs', 'added p99 µs'],
        rows.map((r) => [r.name, fmt(r.requestsPerSecond), `${r.vsDirect.toFixed(2)}×`, fmt(r.latency.p50), fmt(r.latency.p99), r.addedP50Us === null ? '–' : fmt(r.addedP50Us), r.addedP99Us === null ? '–' : fmt(r.addedP99Us)]),
      ),
    ].join('\n');
    return { name: 'translate', data: { rows }, markdown };
  } finally {
    for (const s of sessions) s.close();
    await Promise.all(children.reverse().map((c) => c.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}
