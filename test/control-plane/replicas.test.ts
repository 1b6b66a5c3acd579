// Several control-plane processes on one real etcd cluster: cross-replica push and resume, CAS conflicts, leader election, shared probes, quorum loss.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETCD_BINARY, ETCD_SKIP_REASON, EtcdCluster } from '../helpers/etcd.js';
import { loadConfig, type ControlPlaneConfig } from '../../control-plane/config.js';
import { call, listenApp, removeTempDirs, sleep, SseClient, spec, startControlPlane, type ControlPlaneProcess } from './helpers.js';

if (ETCD_BINARY === undefined) console.warn(ETCD_SKIP_REASON);

/** The request timeout the replicas here run with: quorum loss must answer within it. */
const REQUEST_TIMEOUT_MS = 2_000;
const LEASE_MS = 2_000;

describe.skipIf(ETCD_BINARY === undefined)('control-plane replicas on etcd', () => {
  let cluster: EtcdCluster;
  const processes: ControlPlaneProcess[] = [];
  const clients: SseClient[] = [];
  const servers: Server[] = [];

  async function replicas(store: string, n: number, extra: string[] = []): Promise<ControlPlaneProcess[]> {
    const started = await Promise.all(
      Array.from({ length: n }, () => startControlPlane(store, ['--etcd-request-timeout', `${REQUEST_TIMEOUT_MS}ms`, '--probe-interval', '0', ...extra])),
    );
    processes.push(...started);
    return started;
  }

  async function watch(url: string, workload: string, lastEventId?: string): Promise<SseClient> {
    const c = await SseClient.connect(url, `/v1/workloads/${workload}/routes/watch`, lastEventId === undefined ? {} : { lastEventId });
    clients.push(c);
    return c;
  }

  async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await probe();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(v)}`);
      await sleep(50);
    }
  }

  beforeAll(async () => {
    cluster = await EtcdCluster.start();
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const s of servers) s.close();
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await cluster?.close();
    removeTempDirs();
  });

  it('a watcher on one replica gets a change made on another, with the same revision; it resumes on a third', async () => {
    const [a, b, c] = await replicas(cluster.storeUrl(), 3);
    const onB = await watch(b!.url, 'ns/orders');
    await onB.waitEvents(1); // the snapshot
    const created = await call(a!.url, 'PUT', '/v1/sandboxes/one', { spec: spec(['ns/orders'], '127.0.0.1:6001') });
    expect(created.status).toBe(201);
    const [, upsert] = await onB.waitEvents(2);
    expect(upsert).toMatchObject({ event: 'upsert', id: String(created.body.status.revision), data: { route: { sandbox: 'one' } } });
    // Revisions mean the same everywhere: resume on c from what b sent.
    onB.close();
    await call(b!.url, 'PUT', '/v1/sandboxes/two', { spec: spec(['ns/orders'], '127.0.0.1:6002') });
    const resumed = await watch(c!.url, 'ns/orders', upsert!.id);
    const [next] = await resumed.waitEvents(1);
    expect(next).toMatchObject({ event: 'upsert', data: { route: { sandbox: 'two' } } });
    expect(Number(next!.id)).toBe(Number(upsert!.id) + 1);
    for (const r of [a!, b!, c!]) {
      const routes = await until(() => call(r.url, 'GET', '/v1/workloads/ns/orders/routes'), (res) => res.body.revision === Number(next!.id), 10_000, 'the table on every replica');
      expect(routes.body.routes.map((x: { sandbox: string }) => x.sandbox).sort()).toEqual(['one', 'two']);
    }
  });

  it('a replica behind a resuming sidecar sends it no snapshot back in time; an id beyond the store gets one', async () => {
    const store = cluster.storeUrl();
    const etcd = (loadConfig(['--store', store], {}) as ControlPlaneConfig).etcd;
    const a = await listenApp({ etcd, probeIntervalMs: 0 });
    const b = await listenApp({ etcd, probeIntervalMs: 0 });
    try {
      await call(a.url, 'PUT', '/v1/sandboxes/first', { spec: spec(['ns/behind'], '127.0.0.1:6001') });
      await until(() => call(b.url, 'GET', '/healthz'), (res) => res.body.revision === 1, 10_000, 'b at revision 1');
      // b stops following the store: from now on its view is behind (as a lagging watch would be).
      b.app.controlPlane.registry.close();
      const ahead = await call(a.url, 'PUT', '/v1/sandboxes/second', { spec: spec(['ns/behind'], '127.0.0.1:6002') });
      const id = String(ahead.body.status.revision);
      const resumed = await watch(b.url, 'ns/behind', id);
      const fromElsewhere = await watch(b.url, 'ns/behind', '1000');
      await fromElsewhere.waitEvents(1);
      expect(fromElsewhere.events[0]?.event).toBe('snapshot'); // beyond etcd's revision: another history
      await sleep(300);
      expect(resumed.events).toEqual([]); // not the revision-1 snapshot b holds
      expect(resumed.closed).toBe(false);
    } finally {
      await a.app.close();
      await b.app.close();
    }
  });

  it('concurrent applies of one routing key on different replicas: exactly one wins, the others get 409 and write nothing', async () => {
    const rs = await replicas(cluster.storeUrl(), 3);
    for (let round = 0; round < 5; round++) {
      const key = `shared-key-${round}`;
      const results = await Promise.all(rs.map((r, i) => call(r.url, 'PUT', `/v1/sandboxes/r${round}-${i}`, { spec: spec([`ns/w${round}`], '127.0.0.1:6001', { routingKey: key }) })));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([201, 409, 409]);
      for (const r of results.filter((x) => x.status === 409)) expect(r.body.error.code).toBe('LANEWAY_ERR_KEY_CONFLICT');
    }
    const list = await until(() => call(rs[0]!.url, 'GET', '/v1/sandboxes'), (res) => res.body.items.length === 5, 10_000, 'five sandboxes');
    expect(list.body.revision).toBe(5);
  });

  it('exactly one replica leads; killing it moves TTL expiries to another within the lease TTL', async () => {
    const rs = await replicas(cluster.storeUrl(), 3);
    const leaders = async (): Promise<boolean[]> => Promise.all(rs.filter((r) => r.child.exitCode === null && r.child.signalCode === null).map(async (r) => (await call(r.url, 'GET', '/healthz')).body.leader as boolean));
    await until(leaders, (ls) => ls.filter(Boolean).length === 1, 20_000, 'one leader');
    await sleep(LEASE_MS); // no second leader appears
    expect((await leaders()).filter(Boolean)).toHaveLength(1);
    const leaderIndex = (await Promise.all(rs.map(async (r) => (await call(r.url, 'GET', '/healthz')).body.leader as boolean))).indexOf(true);
    const survivor = rs[(leaderIndex + 1) % 3]!;
    const created = await call(survivor.url, 'PUT', '/v1/sandboxes/short', { spec: spec(['ttl/orders'], '127.0.0.1:7001', { ttl: '1s' }) });
    expect(created.status).toBe(201);
    const expiresAt = Date.parse(created.body.status.expiresAt);
    await rs[leaderIndex]!.stop('SIGKILL');
    const killedAt = Date.now();
    await until(() => call(survivor.url, 'GET', '/v1/sandboxes/short'), (res) => res.status === 404, 20_000, 'the expiry');
    // The bound: the dead leader's lease runs out (LEASE_MS), a new one is elected and sweeps (1 s
    // interval, and at once on election). 2 s more for a loaded 2-core machine.
    expect(Date.now() - Math.max(expiresAt, killedAt)).toBeLessThan(LEASE_MS + 1_000 + 2_000);
    await until(leaders, (ls) => ls.filter(Boolean).length === 1, 20_000, 'one leader among the survivors');
  });

  it('probe results are shared: every replica reports the phase the leader measured', async () => {
    const server = createServer((s) => s.destroy());
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const target = `127.0.0.1:${(server.address() as { port: number }).port}`;
    const rs = await replicas(cluster.storeUrl(), 3, ['--probe-interval', '200ms']);
    await call(rs[0]!.url, 'PUT', '/v1/sandboxes/probed', { spec: spec(['ns/probed'], target) });
    for (const r of rs) {
      await until(() => call(r.url, 'GET', '/v1/sandboxes/probed'), (res) => res.body?.status?.phase === 'Ready', 20_000, `Ready on ${r.url}`);
    }
  });

  it('quorum loss: writes answer 503 LANEWAY_ERR_STORE_UNAVAILABLE within the request timeout, reads and watches stay up; quorum back, writes work again', async () => {
    const [a, b] = await replicas(cluster.storeUrl(), 2);
    await call(a!.url, 'PUT', '/v1/sandboxes/before', { spec: spec(['ns/q'], '127.0.0.1:6001') });
    const w = await watch(b!.url, 'ns/q');
    await until(async () => w.events.length, (n) => n >= 1, 10_000, 'snapshot');
    await cluster.stop(1);
    await cluster.stop(2);
    const t0 = Date.now();
    const refused = await call(a!.url, 'PUT', '/v1/sandboxes/during', { spec: spec(['ns/q'], '127.0.0.1:6002') });
    const took = Date.now() - t0;
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('LANEWAY_ERR_STORE_UNAVAILABLE');
    // etcd3 retries a failed call up to 3 times, each with its own deadline; plus a loaded machine.
    expect(took).toBeLessThan(REQUEST_TIMEOUT_MS * 3 + 3_000);
    // Reads answer from the replica's last view; the watch stays open (heartbeats) with the last table.
    expect((await call(b!.url, 'GET', '/v1/sandboxes/before')).status).toBe(200);
    expect((await call(b!.url, 'GET', '/v1/workloads/ns/q/routes')).body.routes).toHaveLength(1);
    expect(w.closed).toBe(false);
    await Promise.all([cluster.restart(1), cluster.restart(2)]);
    const after = await until(() => call(b!.url, 'PUT', '/v1/sandboxes/after', { spec: spec(['ns/q'], '127.0.0.1:6003') }), (res) => res.status === 201, 30_000, 'writes to work again');
    expect(after.status).toBe(201);
    await w.until((c) => c.events.some((e) => e.event === 'upsert' && e.data.route.sandbox === 'after'), 10_000, 'the write after quorum came back');
    // A write refused for a timeout happened whole or not at all (it may still commit once quorum is back).
    const during = await call(a!.url, 'GET', '/v1/sandboxes/during');
    if (during.status === 200) expect(during.body.spec.forks).toEqual([{ workload: 'ns/q', targets: { '8080': '127.0.0.1:6002' } }]);
    else expect(during.status).toBe(404);
  });
});
