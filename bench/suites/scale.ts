// Scale suite: applies on SQLite vs etcd (1 and 3 replicas) as the store grows to 10,000 sandboxes over 1,000 workloads; then 5,000 watch streams over 3 replicas.
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ETCD_BINARY, EtcdCluster } from '../lib/etcd.js';
import { CLI, SERVERS, cpuSeconds, listeningPort, memory, startChild, type Child } from '../lib/procs.js';
import { fmt, median, table } from '../lib/stats.js';
import type { BaseContext, SuiteResult } from '../lib/suite.js';

/** Requests in flight while populating: enough to keep a store busy, as a fleet of CI jobs would. */
const CONCURRENCY = 16;
/** Routes of the one workload whose snapshot a reconnecting sidecar is timed on, whatever the store's size. */
const FIXED_ROUTES = 10;
/** Applies sent one at a time at each checkpoint. */
const SERIAL_APPLIES = 100;

export interface ApplyPoint {
  readonly sandboxes: number;
  readonly appliesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** one apply at a time (no queue): the store's own latency */
  readonly serialP50Ms: number;
  readonly serialP99Ms: number;
  /** ms from opening a watch of a 10-route workload to its snapshot, median */
  readonly snapshotMs: number;
}

export interface StoreCurve {
  readonly store: string;
  readonly points: readonly ApplyPoint[];
  /** MB per replica once full */
  readonly rssMb: readonly number[];
  readonly failed: number;
}

export interface FanoutData {
  readonly watchers: number;
  readonly replicas: number;
  readonly changes: number;
  /** median over changes of: ms from the PUT being sent to each affected watcher having the event */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** RSS growth of the replicas per watch stream, KB */
  readonly kbPerWatcher: number;
  /** replicas' CPU per 1,000 events written, ms */
  readonly cpuMsPer1000Events: number;
  readonly rssMbAfter: readonly number[];
}

export interface ScaleData {
  readonly workloads: number;
  readonly curves: readonly StoreCurve[];
  readonly fanout: FanoutData | undefined;
}

const epochMs = (): number => performance.timeOrigin + performance.now();

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** One PUT over a fresh keep-alive-less request; resolves with the status. */
function put(url: string, name: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(`/v1/sandboxes/${name}`, url), { method: 'PUT', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function specOf(workload: string, i: number): string {
  return JSON.stringify({ spec: { forks: [{ workload, targets: { '8080': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080` } }] } });
}

/** ms from opening a watch to its first (snapshot) event. */
function snapshotTime(url: string, workload: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(new URL(`/v1/workloads/${workload}/routes/watch`, url), { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (chunk: string) => {
        text += chunk;
        if (text.includes('\n\n')) {
          resolve(performance.now() - started);
          req.destroy();
        }
      });
    });
    req.on('error', (err) => (err.message.includes('aborted') || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    req.end();
  });
}

async function startReplicas(n: number, storeArgs: readonly string[]): Promise<{ children: Child[]; urls: string[] }> {
  const started = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      startChild(`control-plane ${i}`, process.execPath, [CLI, 'control-plane', '--listen', '127.0.0.1:0', ...storeArgs, '--probe-interval', '0', '--log-level', 'warn', '--max-watchers', '20000'], listeningPort, 60_000),
    ),
  );
  return { children: started.map((s) => s.child), urls: started.map((s) => `http://127.0.0.1:${s.value}`) };
}

/** Populates to each checkpoint in `sizes`, measuring the last `window` applies before it. */
async function curve(ctx: BaseContext, label: string, urls: readonly string[], sizes: readonly number[], workloads: number, window: number): Promise<{ points: ApplyPoint[]; failed: number }> {
  const points: ApplyPoint[] = [];
  let failed = 0;
  // The fixed workload first: its snapshot stays 10 routes while everything else grows.
  for (let i = 0; i < FIXED_ROUTES; i++) if ((await put(urls[0]!, `fixed-${i}`, specOf('scale/fixed', i))) >= 300) failed++;
  let next = 0;
  for (const size of sizes) {
    const latencies: number[] = [];
    const windowStart = size - window;
    let windowStartedAt = 0;
    let windowEndedAt = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= size) return;
        const t0 = performance.now();
        if (i === windowStart) windowStartedAt = t0;
        const status = await put(urls[i % urls.length]!, `s-${i}`, specOf(`scale/w${i % workloads}`, i));
        const t1 = performance.now();
        if (status >= 300) failed++;
        if (i >= windowStart) {
          latencies.push(t1 - t0);
          windowEndedAt = Math.max(windowEndedAt, t1);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    latencies.sort((a, b) => a - b);
    // One at a time: re-applies of existing sandboxes with a new target (real changes).
    const serial: number[] = [];
    for (let k = 0; k < SERIAL_APPLIES; k++) {
      const i = (k * 7919) % size;
      const t0 = performance.now();
      if ((await put(urls[k % urls.length]!, `s-${i}`, specOf(`scale/w${i % workloads}`, i + size + k))) >= 300) failed++;
      serial.push(performance.now() - t0);
    }
    serial.sort((a, b) => a - b);
    const snapshots: number[] = [];
    for (let k = 0; k < 15; k++) snapshots.push(await snapshotTime(urls[k % urls.length]!, 'scale/fixed'));
    const point = {
      sandboxes: size,
      appliesPerSecond: latencies.length / ((windowEndedAt - windowStartedAt) / 1000),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      serialP50Ms: percentile(serial, 50),
      serialP99Ms: percentile(serial, 99),
      snapshotMs: median(snapshots),
    };
    points.push(point);
    ctx.log(`scale ${label}: ${size} sandboxes, ${fmt(point.appliesPerSecond)} applies/s, p99 ${fmt(point.p99Ms)} ms`);
  }
  return { points, failed };
}

interface WatcherProc {
  readonly child: ChildProcess;
  readonly lines: string[];
  wake: (() => void) | null;
}

function startWatchers(urls: readonly string[], count: number, workload: string): WatcherProc {
  const child = spawn(process.execPath, [join(SERVERS, 'watchers.js'), urls.join(','), String(count), workload], { stdio: ['pipe', 'pipe', 'inherit'] });
  const proc: WatcherProc = { child, lines: [], wake: null };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    proc.lines.push(line);
    proc.wake?.();
  });
  return proc;
}

async function nextLine(proc: WatcherProc, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (proc.lines.length === 0) {
    if (Date.now() > deadline) throw new Error('watcher process: no answer in time');
    if (proc.child.exitCode !== null) throw new Error(`watcher process exited ${proc.child.exitCode}`);
    await new Promise<void>((resolve) => {
      proc.wake = resolve;
      setTimeout(resolve, 200);
    });
  }
  return proc.lines.shift()!;
}

async function fanout(ctx: BaseContext, children: readonly Child[], urls: readonly string[], processes: number, perProcess: number, changes: number): Promise<FanoutData> {
  const rssBefore = children.map((c) => memory(c.pid).rss);
  const procs = Array.from({ length: processes }, () => startWatchers(urls, perProcess, 'scale/hot'));
  try {
    for (const p of procs) {
      const line = await nextLine(p, 120_000);
      if (!line.startsWith('ready')) throw new Error(`watcher process: ${line}`);
    }
    const watchers = processes * perProcess;
    const rssAfterConnect = children.map((c) => memory(c.pid).rss);
    const cpuBefore = children.reduce((sum, c) => sum + cpuSeconds(c.pid), 0);
    const perChange: { p50: number; p99: number; max: number }[] = [];
    for (let k = 0; k < changes; k++) {
      const name = `hot-${k}`;
      for (const p of procs) p.child.stdin!.write(`wait ${name}\n`);
      await new Promise((r) => setTimeout(r, 50)); // the wait lines are read before the event can arrive
      const sentAt = epochMs();
      const status = await put(urls[k % urls.length]!, name, specOf('scale/hot', k));
      if (status >= 300) ctx.fail(`scale fan-out: apply answered ${status}`);
      const latencies: number[] = [];
      for (const p of procs) {
        const report = JSON.parse(await nextLine(p, 60_000)) as { sandbox: string; times: number[] };
        for (const t of report.times) latencies.push(t - sentAt);
      }
      latencies.sort((a, b) => a - b);
      perChange.push({ p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1]! });
      await new Promise((r) => setTimeout(r, 300));
    }
    const cpuAfter = children.reduce((sum, c) => sum + cpuSeconds(c.pid), 0);
    const data: FanoutData = {
      watchers,
      replicas: children.length,
      changes,
      p50Ms: median(perChange.map((c) => c.p50)),
      p99Ms: median(perChange.map((c) => c.p99)),
      maxMs: median(perChange.map((c) => c.max)),
      kbPerWatcher: rssAfterConnect.reduce((s, v, i) => s + v - rssBefore[i]!, 0) / 1024 / watchers,
      cpuMsPer1000Events: ((cpuAfter - cpuBefore) * 1000) / ((changes * watchers) / 1000),
      rssMbAfter: children.map((c) => memory(c.pid).rss / 2 ** 20),
    };
    ctx.log(`scale fan-out: ${watchers} watchers on ${children.length} replicas, p99 ${fmt(data.p99Ms)} ms`);
    return data;
  } finally {
    for (const p of procs) p.child.kill('SIGKILL');
  }
}

export async function scale(ctx: BaseContext): Promise<SuiteResult<ScaleData>> {
  if (ETCD_BINARY === undefined) return { name: 'scale', skipped: 'etcd is not installed (apt-get install etcd-server)', markdown: '' };
  const sizes = ctx.quick ? [200, 600] : [1_000, 5_000, 10_000];
  const workloads = ctx.quick ? 100 : 1_000;
  const window = ctx.quick ? 100 : 500;
  const curves: StoreCurve[] = [];
  let fan: FanoutData | undefined;
  const cluster = await EtcdCluster.start();
  const dirs: string[] = [];
  try {
    const configs: { store: string; replicas: number; args: () => string[] }[] = [
      {
        store: 'SQLite, 1 replica',
        replicas: 1,
        args: () => {
          const dir = mkdtempSync(join(tmpdir(), 'laneway-scale-'));
          dirs.push(dir);
          return ['--data', dir];
        },
      },
      { store: 'etcd, 1 replica', replicas: 1, args: () => ['--store', cluster.storeUrl()] },
      { store: 'etcd, 3 replicas', replicas: 3, args: () => ['--store', cluster.storeUrl()] },
    ];
    for (const config of configs) {
      const { children, urls } = await startReplicas(config.replicas, config.args());
      try {
        const { points, failed } = await curve(ctx, config.store, urls, sizes, workloads, window);
        if (failed > 0) ctx.fail(`scale ${config.store}: ${failed} applies failed`);
        curves.push({ store: config.store, points, rssMb: children.map((c) => memory(c.pid).rss / 2 ** 20), failed });
        if (config.replicas === 3) fan = await fanout(ctx, children, urls, ctx.quick ? 2 : 5, ctx.quick ? 250 : 1_000, ctx.quick ? 2 : 5);
      } finally {
        await Promise.all(children.map((c) => c.stop()));
      }
    }
  } finally {
    await cluster.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }

  const rows = curves.flatMap((c) => c.points.map((p) => [c.store, String(p.sandboxes), fmt(p.appliesPerSecond), fmt(p.p50Ms), fmt(p.p99Ms), fmt(p.serialP50Ms), fmt(p.serialP99Ms), fmt(p.snapshotMs)]));
  let markdown =
    `Applies at concurrency ${CONCURRENCY} over ${workloads} workloads (spread over the replicas); each point is the last ${window} applies before the store reached that size, then ${SERIAL_APPLIES} applies one at a time; ` +
    `snapshot: a new watch of a ${FIXED_ROUTES}-route workload until its snapshot arrives (median of 15).\n\n` +
    table(['store', 'sandboxes', 'applies/s', 'p50 ms', 'p99 ms', `one at a time: p50 ms`, 'p99 ms', 'snapshot ms'], rows) +
    `\n\nRSS per replica when full: ${curves.map((c) => `${c.store} ${c.rssMb.map((m) => fmt(m)).join(' / ')} MB`).join('; ')}.\n`;
  if (fan !== undefined) {
    markdown +=
      `\nFan-out: ${fan.watchers} watch streams of one workload spread over ${fan.replicas} replicas (held by watcher processes), on a store of ${sizes.at(-1)} sandboxes; ` +
      `${fan.changes} applies, each through the next replica; per apply the time from the PUT being sent to each watcher having the event, then the median over applies.\n\n` +
      table(
        ['watchers', 'p50 ms', 'p99 ms', 'max ms', 'KB per watcher', 'CPU ms per 1,000 events', 'RSS per replica MB'],
        [[String(fan.watchers), fmt(fan.p50Ms), fmt(fan.p99Ms), fmt(fan.maxMs), fmt(fan.kbPerWatcher), fmt(fan.cpuMsPer1000Events), fan.rssMbAfter.map((m) => fmt(m)).join(' / ')]],
      ) +
      '\n';
  }
  return { name: 'scale', data: { workloads, curves, fanout: fan }, markdown };
}
