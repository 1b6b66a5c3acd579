// Real control-plane processes on a real SQLite file: kill -9 and restart lose nothing acknowledged; revisions keep rising; TTLs fire; one process per data dir.
import { afterAll, describe, expect, it } from 'vitest';
import { runLaneway } from '../helpers/processes.js';
import { call, removeTempDirs, sleep, SseClient, spec, startControlPlane, tempDir, type ControlPlaneProcess } from './helpers.js';
import { useStores } from './stores.js';

const started: ControlPlaneProcess[] = [];
const clients: SseClient[] = [];

async function start(dir: string, extra: string[] = []): Promise<ControlPlaneProcess> {
  const cp = await startControlPlane(dir, extra);
  started.push(cp);
  return cp;
}

afterAll(async () => {
  for (const c of clients) c.close();
  for (const cp of started) await cp.stop('SIGKILL');
  removeTempDirs();
});

describe.each(useStores())('$name store', (store) => {
  describe('kill -9 and restart', () => {
    it('keeps every acknowledged write, its revisions and keys; the counter keeps increasing', async () => {
      const dir = store.fresh();
      const first = await start(dir);
      // Writes race a SIGKILL: each 2xx answer is a promise that the change is on disk.
      const acked = new Map<string, string>();
      const writer = (async () => {
        for (let i = 0; ; i++) {
          try {
            const res = await call(first.url, 'PUT', `/v1/sandboxes/s${i}`, { spec: spec([`ns/w${i % 3}`], `127.0.0.1:${5000 + i}`) });
            if (res.status === 201) acked.set(`s${i}`, res.body.status.routingKey);
          } catch {
            return; // the process is gone
          }
        }
      })();
      while (acked.size < 40) await sleep(5);
      const deleted = await call(first.url, 'DELETE', '/v1/sandboxes/s0');
      expect(deleted.status).toBe(200);
      acked.delete('s0');
      const before = (await call(first.url, 'GET', '/v1/sandboxes')).body;
      const workloadBefore = (await call(first.url, 'GET', '/v1/workloads/ns/w0/routes')).body;
      await first.stop('SIGKILL');
      await writer;

      const second = await start(dir);
      const after = (await call(second.url, 'GET', '/v1/sandboxes')).body;
      const names = new Set(after.items.map((s: { name: string }) => s.name));
      for (const [name, key] of acked) {
        expect(names.has(name), `${name} was acknowledged`).toBe(true);
        expect(after.items.find((s: { name: string }) => s.name === name).status.routingKey).toBe(key);
      }
      expect(names.has('s0')).toBe(false);
      expect(after.revision).toBeGreaterThanOrEqual(before.revision);
      // Everything listed before the kill is there with the same revision.
      for (const item of before.items) {
        expect(after.items.find((s: { name: string }) => s.name === item.name)?.status.revision).toBe(item.status.revision);
      }
      const workloadAfter = (await call(second.url, 'GET', '/v1/workloads/ns/w0/routes')).body;
      expect(workloadAfter.revision).toBeGreaterThanOrEqual(workloadBefore.revision);
      for (const route of workloadBefore.routes) expect(workloadAfter.routes).toContainEqual(route);

      const next = await call(second.url, 'PUT', '/v1/sandboxes/after-restart', { spec: spec(['ns/w0']) });
      expect(next.body.status.revision).toBe(after.revision + 1);
    });

    it('a watcher that resumes across a restart with its Last-Event-ID converges to the new table', async () => {
      const dir = store.fresh();
      const first = await start(dir);
      await call(first.url, 'PUT', '/v1/sandboxes/a', { spec: spec(['ns/orders'], '127.0.0.1:6001') });
      const w = await SseClient.connect(first.url, '/v1/workloads/ns/orders/routes/watch');
      clients.push(w);
      const [snap] = await w.waitEvents(1);
      await first.stop('SIGKILL');

      const second = await start(dir);
      // Up to date with the revision it had: nothing to send, the stream stays open.
      const resumed = await SseClient.connect(second.url, '/v1/workloads/ns/orders/routes/watch', { lastEventId: snap?.id as string });
      clients.push(resumed);
      await sleep(100);
      expect(resumed.events).toHaveLength(0);
      await call(second.url, 'PUT', '/v1/sandboxes/b', { spec: spec(['ns/orders'], '127.0.0.1:6002') });
      const [upsert] = await resumed.waitEvents(1);
      expect(upsert?.event).toBe('upsert');
      expect(Number(upsert?.id)).toBeGreaterThan(Number(snap?.id));
    });
  });

  describe('TTL', () => {
    it('deletes a sandbox within seconds of expiry and pushes the delete', async () => {
      const cp = await start(store.fresh());
      const created = await call(cp.url, 'PUT', '/v1/sandboxes/short', { spec: spec(['ttl/orders'], '127.0.0.1:7001', { ttl: '1s', routingKey: 'short-key' }) });
      expect(created.status).toBe(201);
      const w = await SseClient.connect(cp.url, '/v1/workloads/ttl/orders/routes/watch');
      clients.push(w);
      await w.waitEvents(1);
      const t0 = Date.now();
      const [, del] = await w.waitEvents(2, 10_000);
      expect(del).toMatchObject({ event: 'delete', data: { key: 'short-key' } });
      // 1s TTL + 1s sweep period; the rest is slack for a loaded machine.
      expect(Date.now() - t0).toBeLessThan(5000);
      expect((await call(cp.url, 'GET', '/v1/sandboxes/short')).status).toBe(404);
    });

    it('still fires after kill -9: sandboxes that expired while down are gone at startup, pending ones later', async () => {
      const dir = store.fresh();
      const first = await start(dir);
      await call(first.url, 'PUT', '/v1/sandboxes/expires-down', { spec: spec(['ttl/a'], '127.0.0.1:7002', { ttl: '1s' }) });
      await call(first.url, 'PUT', '/v1/sandboxes/expires-later', { spec: spec(['ttl/b'], '127.0.0.1:7003', { ttl: '3s' }) });
      await call(first.url, 'PUT', '/v1/sandboxes/stays', { spec: spec(['ttl/a'], '127.0.0.1:7004') });
      const before = (await call(first.url, 'GET', '/v1/sandboxes')).body;
      const namesBefore: string[] = before.items.map((s: { name: string }) => s.name);
      await first.stop('SIGKILL');
      await sleep(1200);

      const second = await start(dir);
      // On etcd the restarted replica sweeps once it holds the leader lease (the dead one's runs out first).
      if (store.name === 'etcd') for (let i = 0; i < 100 && (await call(second.url, 'GET', '/v1/sandboxes/expires-down')).status !== 404; i++) await sleep(100);
      const list = (await call(second.url, 'GET', '/v1/sandboxes')).body;
      const names: string[] = list.items.map((s: { name: string }) => s.name);
      expect(names).not.toContain('expires-down');
      expect(names).toContain('stays');
      // Each expiry is a change like any other. On a loaded machine the first process may already have
      // expired expires-down, or the restart may take long enough for expires-later to go too: count.
      expect(list.revision).toBe(before.revision + namesBefore.filter((n) => !names.includes(n)).length);
      expect((await call(second.url, 'GET', '/v1/workloads/ttl/a/routes')).body.routes.map((r: { sandbox: string }) => r.sandbox)).toEqual(['stays']);
      for (let i = 0; i < 100 && (await call(second.url, 'GET', '/v1/sandboxes/expires-later')).status !== 404; i++) await sleep(100);
      expect((await call(second.url, 'GET', '/v1/sandboxes/expires-later')).status).toBe(404);
    });
  });
});

describe('startup guards', () => {
  it('refuses a second control plane on the same data directory (exit 1, one line)', async () => {
    const dir = tempDir();
    await start(dir);
    const second = await runLaneway(['control-plane', '--listen', '127.0.0.1:0', '--data', dir]);
    expect(second.code).toBe(1);
    expect(second.stderr.trim()).toMatch(/^laneway: .*laneway\.db is in use by another control plane/);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('an etcd store nobody answers for exits 1 with one line', async () => {
    const res = await runLaneway(['control-plane', '--listen', '127.0.0.1:0', '--store', 'etcd://127.0.0.1:1', '--etcd-request-timeout', '500ms']);
    expect(res.code).toBe(1);
    expect(res.stderr.trim()).toMatch(/^laneway: etcd did not answer: /);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses a non-loopback --listen without tokens or --insecure (exit 2 naming the flag)', async () => {
    const res = await runLaneway(['control-plane', '--listen', '0.0.0.0:0', '--data', tempDir()]);
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toMatch(/^laneway: --listen: 0\.0\.0\.0 is not a loopback address; use --tokens-file/);
    const env = await runLaneway(['control-plane', '--data', tempDir()], { LANEWAY_LISTEN: '0.0.0.0:0' });
    expect(env.code).toBe(2);
  });

  it('accepts a non-loopback --listen with --insecure', async () => {
    const cp = await startControlPlane(tempDir(), ['--listen', '0.0.0.0:0', '--insecure']);
    started.push(cp);
    expect(cp.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
  });

  it('bad flags exit 2 with one line', async () => {
    const cases = [
      [['--probe-interval', 'often'], /--probe-interval: expected a duration/],
      [['--heartbeat-interval', '1m'], /--heartbeat-interval: must be between/],
      [['--allow-targets', '10.0.0.0/99'], /--allow-targets: '10\.0\.0\.0\/99' is not a valid CIDR/],
      [['--tokens-file', '/nonexistent/tokens'], /--tokens-file: cannot read/],
      [['--bogus'], /--bogus: unknown flag/],
      [['--store', 'mysql://db:3306'], /--store: expected sqlite:<dir> or etcd:\/\/host:port/],
      [['--store', 'etcd://db'], /--store: 'db' is not host:port/],
      [['--etcd-user', 'root:pw'], /--etcd-user: only applies with --store etcd/],
    ] as [string[], RegExp][];
    const results = await Promise.all(cases.map(([args]) => runLaneway(['control-plane', '--data', tempDir(), '--listen', '127.0.0.1:0', ...args])));
    results.forEach((res, i) => {
      const [args, pattern] = cases[i] as [string[], RegExp];
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toMatch(pattern);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
    });
  });
});
