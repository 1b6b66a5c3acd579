// The storage seam: compare-and-commit, the watch, durable expiries — and a registry that did not write still follows and pushes.
import { afterEach, describe, expect, it } from 'vitest';
import { Registry, type RegistryHooks } from '../../control-plane/registry.js';
import type { WorkloadDelta } from '../../control-plane/route-cache.js';
import { validateSpec } from '../../control-plane/spec.js';
import { SqliteStore } from '../../control-plane/sqlite-store.js';
import { EtcdStore } from '../../control-plane/etcd-store.js';
import type { Change, CommittedChange, SandboxRecord, SandboxStorage } from '../../control-plane/storage.js';
import { removeTempDirs, sleep } from './helpers.js';
import { useStores, type StoreUnderTest } from './stores.js';

const stores: SandboxStorage[] = [];

/** A store on `location`: the SQLite file, or (etcd) one replica's own client on the shared prefix. */
async function openAt(kind: StoreUnderTest, location: string): Promise<SandboxStorage> {
  const config = kind.config(location);
  const store = config.etcd === undefined ? SqliteStore.open(config.dataDir) : await EtcdStore.open(config.etcd);
  stores.push(store);
  return store;
}

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  removeTempDirs();
});

/** Waits until `check` stops throwing: a watch over the network arrives after the commit resolves. */
async function eventually(check: () => void, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

function record(name: string, revision: number, routingKey = `key-${name}`, expiresAt: number | null = null): SandboxRecord {
  const valid = validateSpec(name, { routingKey, forks: [{ workload: 'shop/orders', targets: { '8080': '127.0.0.1:9001' } }] }, null);
  return Object.freeze({ name, spec: valid.spec, canonical: valid.canonical, routingKey, revision, createdAt: 1, updatedAt: 1, expiresAt });
}

function put(name: string, revision: number, routingKey?: string, expiresAt: number | null = null): Change {
  return { cause: 'apply', put: record(name, revision, routingKey, expiresAt), workloads: ['shop/orders'] };
}

/**
 * The real SQLite store seen by a second replica: its watch arrives `delayMs` late, as it would
 * over the network, so this replica's view can be stale when it writes.
 */
function lagging(store: SandboxStorage, delayMs: number): SandboxStorage {
  return {
    location: store.location,
    plans: store.plans,
    load: () => store.load(),
    commit: (expected, change) => store.commit(expected, change),
    renew: (name, expiresAt) => store.renew(name, expiresAt),
    expiredBy: (now) => store.expiredBy(now),
    watch: (from, listener) => store.watch(from, (change) => void setTimeout(() => listener(change), delayMs)),
    close: () => {},
  };
}

function hooks(published: { revision: number; deltas: readonly WorkloadDelta[] }[]): RegistryHooks {
  return {
    restored: () => {},
    published: (revision, deltas) => published.push({ revision, deltas }),
    changed: () => {},
    targetsAdded: () => {},
  };
}

describe.each(useStores())('$name store', (kind) => {
  const locations = new Map<SandboxStorage, string>();
  async function openStore(): Promise<SandboxStorage> {
    const location = kind.fresh();
    const store = await openAt(kind, location);
    locations.set(store, location);
    return store;
  }
  /** Another replica's view of `store`: its own etcd client; with SQLite (one process per file) the same store. */
  async function replicaOf(store: SandboxStorage): Promise<SandboxStorage> {
    return kind.name === 'sqlite' ? store : openAt(kind, locations.get(store)!);
  }

  describe('the store', () => {
    it('commits against the revision the writer read and refuses a stale one, writing nothing', async () => {
      const store = await openStore();
      expect(await store.commit(0, put('a', 1))).toEqual({ committed: true, revision: 1 });
      expect(await store.commit(0, put('b', 1))).toEqual({ committed: false, current: 1 });
      const loaded = await store.load();
      expect(loaded.revision).toBe(1);
      expect(loaded.sandboxes.map((s) => s.name)).toEqual(['a']);
      expect(loaded.workloads.get('shop/orders')).toBe(1);
    });

    it('tells every watcher each committed change in order, and nothing for a refused one', async () => {
      const store = await openStore();
      const seen: CommittedChange[] = [];
      await store.load();
      const unwatch = store.watch(0, (c) => seen.push(c));
      await store.commit(0, put('a', 1));
      await store.commit(0, put('b', 1)); // stale: refused
      await store.commit(1, { cause: 'delete', deleteName: 'a', workloads: ['shop/orders'] });
      await eventually(() => expect(seen).toHaveLength(2));
      unwatch();
      await store.commit(2, put('c', 3));
      await sleep(200);
      expect(seen.map((c) => [c.revision, c.cause, c.put?.name ?? c.deleteName])).toEqual([
        [1, 'apply', 'a'],
        [2, 'delete', 'a'],
      ]);
    });

    it('a watch starts where the load left off, not at an arbitrary revision', async () => {
      const store = await openStore();
      await store.commit(0, put('a', 1));
      await store.load();
      expect(() => store.watch(0, () => {})).toThrow(kind.name === 'sqlite' ? /current revision 1/ : /revision it loaded \(1\)/);
    });

    it('keeps expiries durably and answers which ran out, renewals included', async () => {
      const store = await openStore();
      await store.commit(0, put('a', 1, 'key-a', 1_000));
      await store.commit(1, put('b', 2, 'key-b', 5_000));
      expect(await store.expiredBy(2_000)).toEqual(['a']);
      await store.renew('a', 10_000);
      expect(await store.expiredBy(6_000)).toEqual(['b']);
    });
  });

  describe('registries on a shared store', () => {
    it('a registry that did not write follows the change and publishes its deltas', async () => {
      const store = await openStore();
      const pushedA: { revision: number; deltas: readonly WorkloadDelta[] }[] = [];
      const pushedB: { revision: number; deltas: readonly WorkloadDelta[] }[] = [];
      const a = await Registry.open(store, hooks(pushedA));
      const b = await Registry.open(await replicaOf(store), hooks(pushedB));
      const valid = validateSpec('pr-1', { forks: [{ workload: 'shop/orders', targets: { '8080': '127.0.0.1:9001' } }] }, null);
      const { record: written } = await a.apply('pr-1', valid, Date.now());
      await eventually(() => expect(b.get('pr-1')).toEqual(written));
      expect(b.revision).toBe(1);
      expect(pushedB).toEqual(pushedA);
      expect(pushedB[0]?.deltas).toEqual([{ workload: 'shop/orders', type: 'upsert', route: { key: written.routingKey, sandbox: 'pr-1', targets: { '8080': '127.0.0.1:9001' } } }]);
      await b.delete('pr-1');
      await eventually(() => expect(a.get('pr-1')).toBeUndefined());
      expect(pushedA.map((p) => p.deltas[0]?.type)).toEqual(['upsert', 'delete']);
      a.close();
      b.close();
    });

    it('a writer with a stale view loses the compare, catches up, and then sees the key conflict (409), writing nothing', async () => {
      const store = await openStore();
      const fresh = await Registry.open(store, hooks([]));
      const stale = await Registry.open(lagging(await replicaOf(store), 30), hooks([]));
      const spec = (key: string): ReturnType<typeof validateSpec> =>
        validateSpec('x', { routingKey: key, forks: [{ workload: 'shop/orders', targets: { '8080': '127.0.0.1:9001' } }] }, null);
      await fresh.apply('one', spec('shared-key-1'), Date.now());
      expect(stale.get('one')).toBeUndefined(); // its watch has not arrived yet
      await expect(stale.apply('two', spec('shared-key-1'), Date.now())).rejects.toMatchObject({ code: 'LANEWAY_ERR_KEY_CONFLICT', status: 409 });
      const loaded = await store.load();
      expect(loaded.sandboxes.map((s) => s.name)).toEqual(['one']);
      expect(loaded.revision).toBe(1);
      fresh.close();
      stale.close();
    });

    it('a burst of concurrent writes through one registry all commit (queued, not retried into 503)', async () => {
      const store = await openStore();
      const a = await Registry.open(store, hooks([]));
      const writes = Array.from({ length: 24 }, (_, i) =>
        a.apply(`burst-${i}`, validateSpec(`burst-${i}`, { forks: [{ workload: `shop/w${i % 3}`, targets: { '8080': '127.0.0.1:9001' } }] }, null), Date.now()),
      );
      const results = await Promise.all(writes);
      expect(results.map((r) => r.result)).toEqual(Array(24).fill('created'));
      expect(results.map((r) => r.record.revision).sort((x, y) => x - y)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
      expect((await store.load()).revision).toBe(24);
      a.close();
    });

    it('concurrent applies of one sandbox from two registries both land, in order, none lost', async () => {
      const store = await openStore();
      const a = await Registry.open(store, hooks([]));
      const b = await Registry.open(lagging(await replicaOf(store), 20), hooks([]));
      const spec = (target: string): ReturnType<typeof validateSpec> =>
        validateSpec('pr', { forks: [{ workload: 'shop/orders', targets: { '8080': target } }] }, null);
      const results = await Promise.all([a.apply('pr', spec('127.0.0.1:9001'), Date.now()), b.apply('pr', spec('127.0.0.1:9002'), Date.now())]);
      // Over a network either may win the compare (on SQLite it is a, whose commit is synchronous).
      const first = results.find((r) => r.result === 'created')!;
      const second = results.find((r) => r.result === 'configured')!; // the loser retried on the winner's state: an update, not a second create
      expect(first).toBeDefined();
      expect(second).toBeDefined();
      if (kind.name === 'sqlite') expect(first).toBe(results[0]);
      expect(second.record.routingKey).toBe(first.record.routingKey); // the generated key survives the re-apply
      const loaded = await store.load();
      expect(loaded.revision).toBe(2);
      expect(loaded.sandboxes[0]?.spec.forks[0]?.targets['8080']).toBe(second.record.spec.forks[0]?.targets['8080']);
      await eventually(() => expect(a.get('pr')?.revision).toBe(2));
      a.close();
      b.close();
    });
  });
});
