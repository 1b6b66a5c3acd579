// Micro suite: the routing decision alone (header scan + key extraction + table lookup) in ns/op, and applying a 10,000-route snapshot.
import { pino } from 'pino';
import { findBaggageValue } from '../../proxy/baggage.js';
import { HeaderRules, scanHeaders } from '../../proxy/headers.js';
import { Stats } from '../../proxy/metrics.js';
import { RouteState } from '../../proxy/route-state.js';
import { RouteTable } from '../../model/route-table.js';
import { Router, type Routed } from '../../proxy/router.js';
import { APP_PORT, baggage, baggage8k, BASE_HEADERS, ROUTE_COUNT, routeSnapshot, SANDBOX_KEY, WORKLOAD } from '../lib/fixtures.js';
import { fmt, median, table } from '../lib/stats.js';
import { createRequire } from 'node:module';
import { MAX_HEAD_BYTES, parseRequestHead, RequestHead } from '../../proxy/h1-head.js';
import type { BaseContext, SuiteResult } from '../lib/suite.js';

export interface MicroRow {
  readonly name: string;
  /** scanHeaders + Router.decide: everything the sidecar does to route one request */
  readonly decisionNs: number;
  /** findBaggageValue + RouteTable.lookup: key extraction and lookup alone */
  readonly keyLookupNs: number;
}

export interface MicroData {
  readonly rows: readonly MicroRow[];
  /** JSON text → validated, compiled table installed, for 10,000 routes */
  readonly applySnapshotMs: number;
  /** one pushed `upsert` applied to a 10,000-route table */
  readonly applyUpsertMs: number;
  /** a realistic request head (10 headers, baggage) parsed by the fast-path parser, and by llhttp as Node's server runs it */
  readonly headParseNs: number;
  readonly llhttpNs: number;
}

// Results go here so V8 cannot drop the work as dead code.
let sink: unknown;

/**
 * ns per call of `fn`: batches sized to ~`batchMs`, timed with hrtime; the median batch is reported,
 * which discards batches hit by GC or by the other processes on this shared machine.
 */
function nsPerOp(fn: () => unknown, batchMs: number, batches: number): number {
  let n = 1;
  for (;;) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = fn();
    const elapsed = Number(process.hrtime.bigint() - start);
    if (elapsed > batchMs * 1e6 / 4) {
      n = Math.max(1, Math.round((n * batchMs * 1e6) / elapsed));
      break;
    }
    n *= 4;
  }
  const results: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = fn();
    results.push(Number(process.hrtime.bigint() - start) / n);
  }
  return median(results);
}

/** A request's raw headers as Node's parser hands them over (`req.rawHeaders`). */
function rawHeaders(baggageValue: string | undefined): string[] {
  const raw = ['Host', `127.0.0.1:15080`, 'Connection', 'keep-alive'];
  for (const [name, value] of Object.entries(BASE_HEADERS)) raw.push(name, value);
  if (baggageValue !== undefined) raw.push('baggage', baggageValue);
  return raw;
}

export async function micro(ctx: BaseContext): Promise<SuiteResult<MicroData>> {
  const batchMs = ctx.quick ? 5 : 20;
  const batches = ctx.quick ? 5 : 25;
  const log = pino({ level: 'silent' });
  const snapshotText = JSON.stringify(routeSnapshot('127.0.0.1:9', APP_PORT));
  const big = RouteTable.parse(JSON.parse(snapshotText));
  const small = RouteTable.parse({ workload: WORKLOAD, revision: 1, routes: [{ key: SANDBOX_KEY, sandbox: 'one', targets: { [APP_PORT]: '127.0.0.1:9' } }] });
  const rules = new HeaderRules('laneway');

  const routerFor = (t: RouteTable): Router => {
    const state = new RouteState(WORKLOAD, new Stats(), log);
    state.replace(t, 'bench');
    return new Router(state, 'laneway', 8);
  };
  const bigRouter = routerFor(big);
  const smallRouter = routerFor(small);

  const cases: { name: string; header: string | undefined; router: Router; table: RouteTable; routed: boolean }[] = [
    { name: 'no baggage', header: undefined, router: bigRouter, table: big, routed: false },
    { name: '1 member (the key)', header: baggage(1), router: bigRouter, table: big, routed: true },
    { name: '10 members, no key', header: baggage(10, false), router: bigRouter, table: big, routed: false },
    { name: '10 members', header: baggage(10), router: bigRouter, table: big, routed: true },
    { name: '10 members, 1-route table', header: baggage(10), router: smallRouter, table: small, routed: true },
    { name: '64 members', header: baggage(64), router: bigRouter, table: big, routed: true },
    { name: '8 KB header (key last)', header: baggage8k(), router: bigRouter, table: big, routed: true },
  ];

  const rows: MicroRow[] = [];
  for (const c of cases) {
    const raw = rawHeaders(c.header);
    const out: Routed = { route: undefined, target: undefined, error: undefined };
    // Correctness first: a fast wrong answer is a broken sidecar, and fails the run.
    const decision = c.router.decide(scanHeaders(raw, rules), APP_PORT, out);
    if ((decision === 1) !== c.routed || (c.routed && out.route?.key !== SANDBOX_KEY)) {
      ctx.fail(`micro/${c.name}: decision ${decision}, route ${out.route?.key ?? 'none'}; expected ${c.routed ? SANDBOX_KEY : 'baseline'}`);
    }
    const decisionNs = nsPerOp(() => {
      out.route = undefined;
      out.target = undefined;
      return c.router.decide(scanHeaders(raw, rules), APP_PORT, out);
    }, batchMs, batches);
    const header = c.header ?? '';
    const tableRef = c.table;
    const keyLookupNs = nsPerOp(() => {
      const key = c.header === undefined ? undefined : findBaggageValue(header, 'laneway');
      return key === undefined ? undefined : tableRef.lookup(key);
    }, batchMs, batches);
    rows.push({ name: c.name, decisionNs, keyLookupNs });
    ctx.log(`micro ${c.name}: decision ${fmt(decisionNs)} ns, key+lookup ${fmt(keyLookupNs)} ns`);
  }

  // Applying snapshots: milliseconds, so fewer and larger batches.
  const state = new RouteState(WORKLOAD, new Stats(), log);
  const applyRounds = ctx.quick ? 3 : 15;
  const applies: number[] = [];
  for (let i = 0; i < applyRounds; i++) {
    const start = process.hrtime.bigint();
    state.replace(RouteTable.parse(JSON.parse(snapshotText)), 'bench');
    applies.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  // Pushed upserts change the table in place: a copy of the big table to keep `big` as it was for other rows.
  const upserts: number[] = [];
  const current = RouteTable.fromSnapshot(big.toSnapshot());
  for (let i = 0; i < applyRounds * 40; i++) {
    const start = process.hrtime.bigint();
    current.applyUpsert({ revision: 2 + i, route: { key: `upsert${i}`, sandbox: `upsert-${i % 50}`, targets: { [APP_PORT]: '127.0.0.1:9' } } });
    upserts.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  if (current.size !== big.size + 50) ctx.fail(`micro: upserts left ${current.size} routes, expected ${big.size + 50}`);
  sink = current;
  const applySnapshotMs = median(applies);
  const applyUpsertMs = median(upserts);

  // The request head: the fast-path parser against llhttp (Node's server parser, its callbacks doing the least they can).
  const headBytes = Buffer.from(
    `GET /items/7?expand=price HTTP/1.1\r\nHost: orders.default.svc:8080\r\n${Object.entries(BASE_HEADERS).map(([n, v]) => `${n}: ${v}\r\n`).join('')}baggage: ${baggage(10)}\r\n\r\n`,
    'latin1',
  );
  const head = new RequestHead();
  if (parseRequestHead(headBytes, 0, head) !== headBytes.length) ctx.fail('micro: the fast-path parser did not accept the benchmark head');
  const headParseNs = nsPerOp(() => parseRequestHead(headBytes, 0, head), batchMs, batches);
  const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: any };
  const parser = new HTTPParser();
  parser[HTTPParser.kOnHeadersComplete] = () => 0;
  const llhttpNs = nsPerOp(() => {
    parser.initialize(HTTPParser.REQUEST, {}, MAX_HEAD_BYTES, 0);
    return parser.execute(headBytes);
  }, batchMs, batches);
  ctx.log(`micro head parse: fast path ${fmt(headParseNs)} ns, llhttp ${fmt(llhttpNs)} ns`);
  void sink;

  const markdown = [
    `In-process, ${batches} batches of ~${batchMs} ms each, median ns/op. *Decision* = \`scanHeaders\` over a realistic request's 7 raw headers + \`Router.decide\` (what the sidecar does per request before dispatch); *key + lookup* = \`findBaggageValue\` + \`RouteTable.lookup\`. ${ROUTE_COUNT.toLocaleString('en-US')}-route table unless noted.`,
    '',
    table(['case', 'decision ns/op', 'key + lookup ns/op'], rows.map((r) => [r.name, fmt(r.decisionNs), fmt(r.keyLookupNs)])),
    '',
    `Applying a ${ROUTE_COUNT.toLocaleString('en-US')}-route snapshot (JSON text → validated, compiled, installed): ${fmt(applySnapshotMs)} ms (median of ${applyRounds}). One pushed upsert into a ${ROUTE_COUNT.toLocaleString('en-US')}-route table: ${fmt(applyUpsertMs)} ms.`,
    '',
    `A ${headBytes.length}-byte request head (10 headers, 10-member baggage): the fast-path parser (\`proxy/h1-head.ts\`, not yet on the data path) ${fmt(headParseNs)} ns, llhttp as Node's server runs it ${fmt(llhttpNs)} ns (${fmt(llhttpNs / headParseNs)}×).`,
  ].join('\n');
  return { name: 'micro', data: { rows, applySnapshotMs, applyUpsertMs, headParseNs, llhttpNs }, markdown };
}
