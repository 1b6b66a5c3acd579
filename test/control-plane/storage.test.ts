// The storage seam: compare-and-commit, the watch, durable expiries — and a registry that did not write still follows and pushes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry, type RegistryHooks } from '../../control-plane/registry.js';
import type { WorkloadDelta } from '../../control-plane/route-cache.js';
import { validateSpec } from '../../control-plane/spec.js';
import { SqliteStore } from '../../control-plane/sqlite-store.js';
import type { Change, CommittedChange, SandboxRecord, SandboxStorage } from '../../control-plane/storage.js';

const dirs: string[] = [];
const stores: SqliteStore[] = [];

function openStore(): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), 'laneway-storage-'));
  dirs.push(dir);
  const store = SqliteStore.open(dir);
  stores.push(store);
  return store;
}

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

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

describe('SQLite store', () => {
  it('commits against the revision the writer read and refuses a stale one, writing nothing', async () => {
    const store = openStore();
    expect(await store.commit(0, put('a', 1))).toEqual({ committed: true, revision: 1 });
    expect(await store.commit(0, put('b', 1))).toEqual({ committed: false, current: 1 });
    const loaded = await store.load();
    expect(loaded.revision).toBe(1);
    expect(loaded.sandboxes.map((s) => s.name)).toEqual(['a']);
    expect(loaded.workloads.get('shop/orders')).toBe(1);
  });

  it('tells every watcher each committed change in order, and nothing for a refused one', async () => {
    const store = openStore();
    const seen: CommittedChange[] = [];
    const unwatch = store.watch(0, (c) => seen.push(c));
    await store.commit(0, put('a', 1));
    await store.commit(0, put('b', 1)); // stale: refused
    await store.commit(1, { cause: 'delete', deleteName: 'a', workloads: ['shop/orders'] });
    unwatch();
    await store.commit(2, put('c', 3));
    expect(seen.map((c) => [c.revision, c.cause, c.put?.name ?? c.deleteName])).toEqual([
      [1, 'apply', 'a'],
      [2, 'delete', 'a'],
    ]);
  });

  it('cannot replay history it does not keep: a watch starts at the current revision', async () => {
    const store = openStore();
    await store.commit(0, put('a', 1));
    expect(() => store.watch(0, () => {})).toThrow(/current revision 1/);
  });

  it('keeps expiries durably and answers which ran out, renewals included', async () => {
    const store = openStore();
    await store.commit(0, put('a', 1, 'key-a', 1_000));
    await store.commit(1, put('b', 2, 'key-b', 5_000));
    expect(await store.expiredBy(2_000)).toEqual(['a']);
    await store.renew('a', 10_000);
    expect(await store.expiredBy(6_000)).toEqual(['b']);
  });
});

describe('registry on a shared store', () => {
  it('a registry that did not write follows the change and publishes its deltas', async () => {
    const store = openStore();
    const pushedA: { revision: number; deltas: readonly WorkloadDelta[] }[] = [];
    const pushedB: { revision: number; deltas: readonly WorkloadDelta[] }[] = [];
    const a = await Registry.open(store, hooks(pushedA));
    const b = await Registry.open(store, hooks(pushedB));
    const valid = validateSpec('pr-1', { forks: [{ workload: 'shop/orders', targets: { '8080': '127.0.0.1:9001' } }] }, null);
    const { record: written } = await a.apply('pr-1', valid, Date.now());
    expect(b.get('pr-1')).toEqual(written);
    expect(b.revision).toBe(1);
    expect(pushedB).toEqual(pushedA);
    expect(pushedB[0]?.deltas).toEqual([{ workload: 'shop/orders', type: 'upsert', route: { key: written.routingKey, sandbox: 'pr-1', targets: { '8080': '127.0.0.1:9001' } } }]);
    await b.delete('pr-1');
    expect(a.get('pr-1')).toBeUndefined();
    expect(pushedA.map((p) => p.deltas[0]?.type)).toEqual(['upsert', 'delete']);
    a.close();
    b.close();
  });

  it('a writer with a stale view loses the compare, catches up, and then sees the key conflict (409), writing nothing', async () => {
    const store = openStore();
    const fresh = await Registry.open(store, hooks([]));
    const stale = await Registry.open(lagging(store, 30), hooks([]));
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

  it('concurrent applies of one sandbox from two registries both land, in order, none lost', async () => {
    const store = openStore();
    const a = await Registry.open(store, hooks([]));
    const b = await Registry.open(lagging(store, 20), hooks([]));
    const spec = (target: string): ReturnType<typeof validateSpec> =>
      validateSpec('pr', { forks: [{ workload: 'shop/orders', targets: { '8080': target } }] }, null);
    const [first, second] = await Promise.all([a.apply('pr', spec('127.0.0.1:9001'), Date.now()), b.apply('pr', spec('127.0.0.1:9002'), Date.now())]);
    expect(first.result).toBe('created');
    expect(second.result).toBe('configured'); // b retried on the state a wrote: an update, not a second create
    expect(second.record.routingKey).toBe(first.record.routingKey); // the generated key survives the re-apply
    const loaded = await store.load();
    expect(loaded.revision).toBe(2);
    expect(loaded.sandboxes[0]?.spec.forks[0]?.targets['8080']).toBe('127.0.0.1:9002');
    expect(a.get('pr')?.revision).toBe(2);
    a.close();
    b.close();
  });
});
