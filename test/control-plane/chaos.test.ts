// 3 etcd members + 3 control-plane replicas + sidecars: 30 s of concurrent writes while a replica is kill -9ed and an etcd member stopped; then the invariants.
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { EtcdStore } from '../../control-plane/etcd-store.js';
import { loadConfig, type ControlPlaneConfig } from '../../control-plane/config.js';
import { routesOf } from '../../control-plane/registry.js';
import { ETCD_BINARY, ETCD_SKIP_REASON, EtcdCluster } from '../helpers/etcd.js';
import { freePort, startSidecar, type SidecarProcess } from '../helpers/processes.js';
import { startUpstream, type Upstream } from '../helpers/servers.js';
import { call, removeTempDirs, sleep, startControlPlane, type ControlPlaneProcess } from './helpers.js';

if (ETCD_BINARY === undefined) console.warn(ETCD_SKIP_REASON);

const RUN_MS = 30_000;
const WORKLOADS = ['chaos/orders', 'chaos/payments'];
const NAMES_PER_WRITER = 8;

type Outcome = 'acked' | 'unknown';
interface Attempt {
  readonly op: 'apply' | 'delete';
  /** the fork target the apply sent */
  readonly target?: string;
  outcome: Outcome;
  routingKey?: string;
}

describe.skipIf(ETCD_BINARY === undefined)('chaos: replicas and etcd members failing under concurrent writes', () => {
  let cluster: EtcdCluster | undefined;
  const replicas: (ControlPlaneProcess | null)[] = [];
  const sidecars: SidecarProcess[] = [];
  let baseline: Upstream | undefined;

  afterAll(async () => {
    await Promise.all(sidecars.map((s) => s.stop('SIGKILL')));
    await Promise.all(replicas.map((r) => r?.stop('SIGKILL')));
    await baseline?.close();
    await cluster?.close();
    removeTempDirs();
  });

  it('loses no acknowledged write, half-applies nothing, converges every sidecar, never moves a sidecar back, fails no baseline request', async () => {
    cluster = await EtcdCluster.start();
    const store = cluster.storeUrl();
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const startReplica = (i: number): Promise<ControlPlaneProcess> =>
      startControlPlane(store, ['--listen', `127.0.0.1:${ports[i]}`, '--probe-interval', '0', '--etcd-request-timeout', '3s']);
    replicas.push(...(await Promise.all([0, 1, 2].map(startReplica))));
    baseline = await startUpstream('baseline');
    const appPort = baseline.port;
    // Sidecar 0 knows only replica 0 (the one killed: it must resume there after the restart); the
    // others fail over between several.
    const lists = [[urls[0]!], [urls[1]!, urls[2]!], [urls[2]!, urls[0]!, urls[1]!], [urls[1]!, urls[0]!]];
    for (let i = 0; i < lists.length; i++) {
      sidecars.push(await startSidecar({ appPort, workload: WORKLOADS[i % 2], extra: ['--control-plane', lists[i]!.join(',')] }));
    }

    const deadline = Date.now() + RUN_MS;
    const history = new Map<string, Attempt[]>();
    let acked = 0;
    const writer = async (w: number): Promise<void> => {
      for (let n = 0; Date.now() < deadline; n++) {
        const name = `w${w}-s${n % NAMES_PER_WRITER}`;
        const workload = WORKLOADS[(n >> 3) % 2]!;
        const op: Attempt['op'] = Math.random() < 0.7 ? 'apply' : 'delete';
        const attempt: Attempt = op === 'apply' ? { op, target: `127.0.0.1:${20000 + w * 5000 + n}`, outcome: 'unknown' } : { op, outcome: 'unknown' };
        const list = history.get(name) ?? [];
        history.set(name, list);
        list.push(attempt);
        // Writes go through every replica in turn: the killed one refuses its share while down.
        const url = urls[(w + n) % 3]!;
        try {
          const res =
            op === 'apply'
              ? await call(url, 'PUT', `/v1/sandboxes/${name}`, { spec: { forks: [{ workload, targets: { [String(appPort)]: attempt.target } }] } })
              : await call(url, 'DELETE', `/v1/sandboxes/${name}`);
          if (res.status < 300 || (op === 'delete' && res.status === 404)) {
            attempt.outcome = 'acked';
            attempt.routingKey = res.body?.status?.routingKey;
            acked++;
          } else if (res.status !== 503) {
            throw new Error(`unexpected ${res.status} ${JSON.stringify(res.body)}`);
          }
        } catch (err) {
          if ((err as Error).message.startsWith('unexpected')) throw err;
          await sleep(50); // the replica is down: unknown outcome, try the next one
        }
        await sleep(10);
      }
    };

    // Baseline traffic through every sidecar the whole time: none may fail.
    let baselineOk = 0;
    const baselineFailures: string[] = [];
    const traffic = async (s: SidecarProcess): Promise<void> => {
      while (Date.now() < deadline) {
        try {
          const res = await request(`http://127.0.0.1:${s.port}/`);
          const body = (await res.body.json()) as { name?: string };
          if (res.statusCode === 200 && body.name === 'baseline') baselineOk++;
          else baselineFailures.push(`${res.statusCode} ${JSON.stringify(body)}`);
        } catch (err) {
          baselineFailures.push((err as Error).message);
        }
        await sleep(25); // steady traffic, not a load test: other suites share the machine
      }
    };

    const chaos = async (): Promise<void> => {
      await sleep(6_000);
      await replicas[0]!.stop('SIGKILL');
      replicas[0] = null;
      await sleep(4_000);
      replicas[0] = await startReplica(0);
      await sleep(3_000);
      await cluster!.stop(1);
      await sleep(5_000);
      await cluster!.restart(1);
    };

    await Promise.all([writer(0), writer(1), writer(2), ...sidecars.map(traffic), chaos()]);
    expect(acked).toBeGreaterThan(50);
    const unknown = [...history.values()].flat().filter((a) => a.outcome === 'unknown').length;
    console.info(`chaos: ${acked} acknowledged writes, ${unknown} unacknowledged (refused or cut off), ${baselineOk} baseline requests`);

    // The store's final state, read straight from etcd.
    const etcd = await EtcdStore.open((loadConfig(['--store', store], {}) as ControlPlaneConfig).etcd!);
    const loaded = await etcd.load();
    etcd.close();
    const final = new Map(loaded.sandboxes.map((r) => [r.name, r]));

    // Every name ends as its last acknowledged write left it, or as a later unacknowledged one — whole.
    for (const [name, attempts] of history) {
      let last = -1;
      attempts.forEach((a, i) => {
        if (a.outcome === 'acked') last = i;
      });
      const candidates = last < 0 ? [{ op: 'delete', outcome: 'acked' } as Attempt, ...attempts] : attempts.slice(last).filter((a, i) => i === 0 || a.outcome === 'unknown');
      const record = final.get(name);
      const matches = candidates.some((a) =>
        a.op === 'delete'
          ? record === undefined
          : record !== undefined && record.spec.forks.length === 1 && record.spec.forks[0]!.targets[String(appPort)] === a.target && (a.outcome !== 'acked' || a.routingKey === undefined || a.routingKey === record.routingKey),
      );
      expect(matches, `${name}: final ${JSON.stringify(record?.spec ?? null)} is none of ${JSON.stringify(candidates)}`).toBe(true);
    }

    // Every replica converges on the store's revision, and every sidecar on its workload's table.
    for (const url of urls) {
      for (let i = 0; i < 200 && (await call(url, 'GET', '/healthz')).body.revision !== loaded.revision; i++) await sleep(50);
      expect((await call(url, 'GET', '/healthz')).body.revision).toBe(loaded.revision);
    }
    const expected = new Map<string, unknown[]>(WORKLOADS.map((w) => [w, []]));
    for (const record of loaded.sandboxes) for (const [workload, route] of routesOf(record)) expected.get(workload)?.push(route);
    for (const routes of expected.values()) routes.sort((a, b) => ((a as { key: string }).key < (b as { key: string }).key ? -1 : 1));
    for (const [i, s] of sidecars.entries()) {
      const workload = WORKLOADS[i % 2]!;
      let table: { routes: unknown[]; revision: number } = { routes: [], revision: -1 };
      for (let n = 0; n < 200; n++) {
        table = (await (await request(`${s.admin}/routes`)).body.json()) as typeof table;
        table.routes.sort((a, b) => ((a as { key: string }).key < (b as { key: string }).key ? -1 : 1)); // the sidecar lists in arrival order
        if (JSON.stringify(table.routes) === JSON.stringify(expected.get(workload))) break;
        await sleep(50);
      }
      expect(table.routes, `sidecar ${i} (${workload})`).toEqual(expected.get(workload));
      expect(table.revision).toBe(loaded.workloads.get(workload) ?? 0);
      // Revisions only increase: every table the sidecar installed (snapshots; deltas below its revision are skipped by design).
      for (const line of s.output().split('\n')) {
        if (!line.includes('"route table installed"')) continue;
        const { revision, previous } = JSON.parse(line) as { revision: number; previous: number };
        expect(revision, `sidecar ${i}: ${line}`).toBeGreaterThanOrEqual(previous);
      }
    }

    expect(baselineFailures).toEqual([]);
    expect(baselineOk).toBeGreaterThan(100);
  }, 240_000);
});
