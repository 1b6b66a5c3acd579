// 1,000 concurrent watchers on a real control plane process: every one receives every change, and how fast.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, removeTempDirs, SseClient, spec, startControlPlane, tempDir, type ControlPlaneProcess } from './helpers.js';

const WATCHERS = 1000;
/** watchers of a workload the changes do not touch */
const QUIET = 50;
const CHANGES = 5;
let cp: ControlPlaneProcess;
const clients: SseClient[] = [];

beforeAll(async () => {
  cp = await startControlPlane(tempDir());
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cp?.stop();
  removeTempDirs();
});

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

it(`${WATCHERS} concurrent watchers of one workload all receive each change; watchers of another get nothing`, async () => {
  for (let i = 0; i < WATCHERS + QUIET; i += 100) {
    const size = Math.min(100, WATCHERS + QUIET - i);
    const batch = await Promise.all(
      Array.from({ length: size }, (_, j) => SseClient.connect(cp.url, `/v1/workloads/fan/${i + j < WATCHERS ? 'orders' : 'quiet'}/routes/watch`)),
    );
    clients.push(...batch);
  }
  await Promise.all(clients.map((c) => c.waitEvents(1, 20_000)));
  expect((await call(cp.url, 'GET', '/healthz')).body.watchers).toBe(WATCHERS + QUIET);
  const orders = clients.slice(0, WATCHERS);
  const quiet = clients.slice(WATCHERS);

  // Change 1 warms the process up (JIT); changes 2.. are measured.
  const delays: number[] = [];
  for (let change = 1; change <= CHANGES + 1; change++) {
    const t0 = performance.now();
    const res = await call(cp.url, 'PUT', '/v1/sandboxes/fan', { spec: spec(['fan/orders'], `127.0.0.1:${4000 + change}`) });
    expect(res.status).toBeLessThan(300);
    await Promise.all(orders.map((c) => c.waitEvents(1 + change, 10_000)));
    for (const c of orders) {
      const e = c.events[change];
      expect(e?.event).toBe('upsert');
      expect(e?.id).toBe(String(res.body.status.revision));
      expect(e?.data.route.targets['8080']).toBe(`127.0.0.1:${4000 + change}`);
      if (change > 1) delays.push((e?.at as number) - t0);
    }
  }
  for (const c of quiet) expect(c.events).toHaveLength(1);
  expect(delays).toHaveLength(WATCHERS * CHANGES);

  const sorted = [...delays].sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  const metrics = await (await fetch(`${cp.url}/metrics`)).text();
  const sum = Number(/^laneway_cp_push_duration_seconds_sum (\S+)$/m.exec(metrics)?.[1]);
  const count = Number(/^laneway_cp_push_duration_seconds_count (\S+)$/m.exec(metrics)?.[1]);
  console.log(
    `fan-out to ${WATCHERS} watchers, ${CHANGES} changes: apply request sent → event parsed by the client: ` +
      `p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${(sorted.at(-1) as number).toFixed(1)} ms; ` +
      `server commit+write to all sockets: mean ${((sum / count) * 1000).toFixed(1)} ms`,
  );
  // The printed figure is the measurement (the README "Push latency" table records it). The bound only catches a
  // regression of another order (a per-watcher timer, a batching delay): a shared 2-core box at load
  // 10 was measured at p99 ~700 ms.
  expect(p99).toBeLessThan(2000);
  expect(metrics).toMatch(new RegExp(`^laneway_cp_push_events_total\\{event="upsert"\\} ${WATCHERS * (CHANGES + 1)}$`, 'm'));
});
