// Push suite: PUT /v1/sandboxes/:name on a real control plane → every one of 1,000 SSE watchers has the upsert; p50/p99 per change.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { until } from '../../core/poll.js';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, listeningPort, sleep, startChild } from '../lib/procs.js';
import { WORKLOAD } from '../lib/fixtures.js';
import { fmt, median, table } from '../lib/stats.js';
import type { BaseContext, SuiteResult } from '../lib/suite.js';

export interface PushData {
  readonly watchers: number;
  readonly changes: number;
  /** per change, then median over changes: ms from the PUT being sent to each watcher having the event */
  readonly fromSent: { readonly p50: number; readonly p99: number; readonly max: number };
  /** the same, from the PUT's response arriving (the definition; 0 when the event came first) */
  readonly fromReturned: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly putMs: number;
}

/** One SSE stream; records when the event naming `waitingFor` arrives. Parses only what it needs (`indexOf`). */
class Watcher {
  buffer = '';
  snapshot = false;
  waitingFor = '';
  receivedAt = 0n;
  res: IncomingMessage | undefined;
  req: ClientRequest | undefined;
  error: Error | undefined;

  onData(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) !== -1) {
      const frame = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      if (frame.includes('event: snapshot')) this.snapshot = true;
      else if (this.waitingFor !== '' && frame.includes('event: upsert') && frame.includes(this.waitingFor)) {
        this.receivedAt = process.hrtime.bigint();
        this.waitingFor = '';
      }
    }
  }
}

function openWatcher(base: URL, w: Watcher): void {
  // agent: false — one TCP connection per watcher, as 1,000 sidecars would have.
  const req = request(new URL(`/v1/workloads/${WORKLOAD}/routes/watch`, base), { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
    w.res = res;
    if (res.statusCode !== 200) w.error = new Error(`watch answered ${res.statusCode}`);
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => w.onData(chunk));
    res.on('error', (err) => (w.error = err));
  });
  req.on('error', (err) => (w.error = err));
  req.end();
  w.req = req;
}

async function put(base: URL, name: string, body: string): Promise<number> {
  const res = await fetch(new URL(`/v1/sandboxes/${name}`, base), { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  return res.status;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** Watchers' events arrive within milliseconds: poll every 2 ms so waiting adds nothing measurable. */
function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  return until(condition, { timeoutMs, intervalMs: 2 });
}

export async function push(ctx: BaseContext): Promise<SuiteResult<PushData>> {
  const cli = CLI;
  if (!existsSync(cli) || !existsSync(join(cli, '..', '..', 'control-plane', 'main.js'))) {
    return { name: 'push', skipped: 'the control plane is not built (dist/control-plane/main.js missing)', markdown: '' };
  }
  const count = ctx.quick ? 100 : 1_000;
  const changes = ctx.quick ? 3 : 20;
  const dir = mkdtempSync(join(tmpdir(), 'laneway-bench-cp-'));
  const { child, value: port } = await startChild(
    'laneway control-plane',
    process.execPath,
    [cli, 'control-plane', '--listen', '127.0.0.1:0', '--data', dir, '--log-level', 'warn'],
    listeningPort,
  );
  const base = new URL(`http://127.0.0.1:${port}`);
  const watchers = Array.from({ length: count }, () => new Watcher());
  try {
    for (const w of watchers) openWatcher(base, w);
    if (!(await waitFor(() => watchers.every((w) => w.snapshot || w.error), 20_000)) || watchers.some((w) => w.error)) {
      const err = watchers.find((w) => w.error)?.error?.message ?? 'timed out';
      ctx.fail(`push: ${watchers.filter((w) => w.snapshot).length}/${count} watchers got their snapshot (${err})`);
      return { name: 'push', markdown: 'failed: watchers did not connect' };
    }
    const fromSent: number[][] = [];
    const fromReturned: number[][] = [];
    const putMs: number[] = [];
    for (let i = 0; i < changes + 1; i++) {
      const name = `bench-push-${i}`;
      // The route's sandbox name is in every upsert event's data: that is what each watcher waits for.
      for (const w of watchers) {
        w.waitingFor = `"sandbox":"${name}"`;
        w.receivedAt = 0n;
      }
      const body = JSON.stringify({ spec: { forks: [{ workload: WORKLOAD, targets: { '8080': '127.0.0.1:9' } }] } });
      const sent = process.hrtime.bigint();
      const status = await put(base, name, body);
      const returned = process.hrtime.bigint();
      if (status < 200 || status > 299) {
        ctx.fail(`push: PUT /v1/sandboxes/${name} answered ${status}`);
        break;
      }
      if (!(await waitFor(() => watchers.every((w) => w.receivedAt !== 0n), 10_000))) {
        ctx.fail(`push: only ${watchers.filter((w) => w.receivedAt !== 0n).length}/${count} watchers got change ${name} within 10 s`);
        break;
      }
      if (i === 0) continue; // warm-up change: first write, JIT
      fromSent.push(watchers.map((w) => Number(w.receivedAt - sent) / 1e6).sort((a, b) => a - b));
      fromReturned.push(watchers.map((w) => Math.max(0, Number(w.receivedAt - returned) / 1e6)).sort((a, b) => a - b));
      putMs.push(Number(returned - sent) / 1e6);
    }
    const summarize = (rounds: number[][]): PushData['fromSent'] => ({
      p50: median(rounds.map((r) => percentile(r, 50))),
      p99: median(rounds.map((r) => percentile(r, 99))),
      max: median(rounds.map((r) => r[r.length - 1] as number)),
    });
    const data: PushData = { watchers: count, changes: fromSent.length, fromSent: summarize(fromSent), fromReturned: summarize(fromReturned), putMs: median(putMs) };
    const markdown = [
      `A real \`laneway control-plane\` (SQLite store in a temp dir), ${count.toLocaleString('en-US')} SSE watchers of \`${WORKLOAD}\`, each on its own connection from the bench process; ${data.changes} sandbox PUTs one after another (after one warm-up). Per change: the p50/p99/max over watchers of when the \`upsert\` event arrived; medians over changes. The watchers' own event loop is part of the figure (1,000 sockets read by one process).`,
      '',
      table(
        ['measured from', 'p50 ms', 'p99 ms', 'all watchers ms'],
        [
          ['PUT sent', fmt(data.fromSent.p50), fmt(data.fromSent.p99), fmt(data.fromSent.max)],
          ['PUT response received', fmt(data.fromReturned.p50), fmt(data.fromReturned.p99), fmt(data.fromReturned.max)],
        ],
      ),
      '',
      `PUT round trip (median): ${fmt(data.putMs)} ms.`,
    ].join('\n');
    return { name: 'push', data, markdown };
  } finally {
    for (const w of watchers) {
      w.res?.destroy();
      w.req?.destroy();
    }
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
