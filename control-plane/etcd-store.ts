// The shared store for several replicas: sandboxes, the global revision and the change feed in etcd (etcd3 client), compare-and-swap per commit.
import { readFileSync } from 'node:fs';
import { Etcd3, isRecoverableError, type IOptions, type Namespace, type Watcher } from 'etcd3';
import { ControlPlaneError } from '../model/api-errors.js';
import type { PlanStorage } from '../model/plans.js';
import { ETCD_DEFAULTS, type EtcdConfig } from './config.js';
import { EtcdPlanStore } from './etcd-plans.js';
import type { SandboxSpec } from './spec.js';
import type { Change, ChangeCause, CommitOutcome, CommittedChange, Loaded, SandboxRecord, SandboxStorage, Unwatch } from './storage.js';

/** The watch of the change feed was cancelled by etcd (compacted past our revision): this replica must restart from a fresh load. */
export class WatchLostError extends Error {
  constructor(reason: string) {
    super(`the etcd watch was cancelled (${reason}); restart to load a fresh state`);
    this.name = 'WatchLostError';
  }
}

/** The JSON of one sandbox key and of a change's `put`: the record without the parsed spec (it is `canonical`). */
interface StoredRecord {
  readonly name: string;
  readonly canonical: string;
  readonly routingKey: string;
  readonly revision: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly expiresAt: number | null;
}

interface StoredChange {
  readonly revision: number;
  readonly cause: ChangeCause;
  readonly put?: StoredRecord;
  readonly deleteName?: string;
  readonly workloads: readonly string[];
}

const REVISION_KEY = 'revision';
const CHANGE_KEY = 'change';
const SANDBOXES = 'sandboxes/';
const WORKLOADS = 'workloads/';
const EXPIRY = 'expiry/';

/**
 * Key layout under `<prefix>/`: `revision` (the global revision, decimal), `change` (the last committed
 * change as JSON: the feed every replica watches), `sandboxes/<name>`, `workloads/<name>` (revision),
 * `expiry/<name>` (epoch ms), `plans/…`, `probes/<target>`, `leader`.
 *
 * A commit is one etcd transaction: if `revision` still holds the revision the writer read, write the
 * counter, the change, the sandbox and its workloads' revisions; else nothing. So the global
 * revision is ours (gap-free, one per change, the same number on every replica) and etcd's own
 * revision (which also moves for renewals, plans, probes and leases) stays internal. The feed is a
 * watch on the `change` key from the etcd revision of the load: etcd delivers every put of that key,
 * in order, exactly once, across reconnects (etcd3 resumes the watch from its last revision).
 */
export class EtcdStore implements SandboxStorage {
  readonly location: string;
  readonly plans: PlanStorage;
  readonly client: Etcd3;
  readonly ns: Namespace;
  readonly config: EtcdConfig;
  readonly #onWatchLost: (err: Error) => void;
  /** the load's revisions, where a watch from that revision starts in etcd's numbering */
  #loaded: { readonly revision: number; readonly etcdRevision: string } | null = null;
  readonly #watchers = new Set<Watcher>();
  #closed = false;

  private constructor(config: EtcdConfig, client: Etcd3, plans: EtcdPlanStore, onWatchLost: (err: Error) => void) {
    this.config = config;
    this.client = client;
    this.ns = client.namespace(`${config.prefix}/`);
    this.location = `etcd://${config.endpoints.join(',')}/${config.prefix}`;
    this.plans = plans;
    this.#onWatchLost = onWatchLost;
  }

  /** Connects (lazily: the first call dials) and loads the plans; `onWatchLost` hears a cancelled watch. */
  static async open(config: EtcdConfig, onWatchLost: (err: Error) => void = () => {}): Promise<EtcdStore> {
    const client = new Etcd3(clientOptions(config));
    try {
      const plans = await EtcdPlanStore.open(client.namespace(`${config.prefix}/plans/`), (fn) => guard(fn));
      return new EtcdStore(config, client, plans, onWatchLost);
    } catch (err) {
      client.close();
      throw err;
    }
  }

  async load(): Promise<Loaded> {
    // One range over every key of ours: a consistent cut at one etcd revision.
    const response = await guard(() => this.ns.getAll().prefix('').exec());
    let revision = 0;
    const sandboxes: SandboxRecord[] = [];
    const workloads = new Map<string, number>();
    const expiries = new Map<string, number>();
    for (const kv of response.kvs) {
      const key = kv.key.toString('utf8'); // relative to the namespace
      const value = kv.value.toString('utf8');
      if (key === REVISION_KEY) revision = Number(value);
      else if (key.startsWith(SANDBOXES)) sandboxes.push(fromStored(JSON.parse(value) as StoredRecord));
      else if (key.startsWith(WORKLOADS)) workloads.set(key.slice(WORKLOADS.length), Number(value));
      else if (key.startsWith(EXPIRY)) expiries.set(key.slice(EXPIRY.length), Number(value));
    }
    // A renewal writes only the expiry key: it is the durable lease.
    const records = sandboxes.map((r) => {
      const expiresAt = expiries.get(r.name) ?? null;
      return expiresAt === r.expiresAt ? r : Object.freeze({ ...r, expiresAt });
    });
    records.sort((a, b) => (a.name < b.name ? -1 : 1));
    this.#loaded = { revision, etcdRevision: String(response.header.revision) };
    return { revision, sandboxes: records, workloads };
  }

  async commit(expected: number, change: Change): Promise<CommitOutcome> {
    const revision = expected + 1;
    if (change.put !== undefined && change.put.revision !== revision) throw new Error(`record revision ${change.put.revision} is not the commit's ${revision}`);
    const ns = this.ns;
    const stored: StoredChange = {
      revision,
      cause: change.cause,
      ...(change.put === undefined ? {} : { put: toStored(change.put) }),
      ...(change.deleteName === undefined ? {} : { deleteName: change.deleteName }),
      workloads: change.workloads,
    };
    const ops = [ns.put(REVISION_KEY).value(String(revision)), ns.put(CHANGE_KEY).value(JSON.stringify(stored))];
    if (change.deleteName !== undefined) ops.push(ns.delete().key(SANDBOXES + change.deleteName) as never, ns.delete().key(EXPIRY + change.deleteName) as never);
    if (change.put !== undefined) {
      ops.push(ns.put(SANDBOXES + change.put.name).value(JSON.stringify(stored.put)));
      if (change.put.expiresAt === null) ops.push(ns.delete().key(EXPIRY + change.put.name) as never);
      else ops.push(ns.put(EXPIRY + change.put.name).value(String(change.put.expiresAt)));
    }
    for (const workload of change.workloads) ops.push(ns.put(WORKLOADS + workload).value(String(revision)));
    // Revision 0 is "the key does not exist yet" (a fresh prefix).
    const txn = expected === 0 ? ns.if(REVISION_KEY, 'Version', '==', 0) : ns.if(REVISION_KEY, 'Value', '==', String(expected));
    const response = await guard(() => txn.then(...ops).else(ns.get(REVISION_KEY)).commit());
    if (response.succeeded) return { committed: true, revision };
    const kv = response.responses[0]?.response_range?.kvs[0];
    return { committed: false, current: kv === undefined ? 0 : Number(kv.value.toString('utf8')) };
  }

  /** The global revision in etcd now (a linearizable read). */
  async currentRevision(): Promise<number> {
    const value = await guard(() => this.ns.get(REVISION_KEY).string());
    return value === null ? 0 : Number(value);
  }

  async renew(name: string, expiresAt: number | null): Promise<void> {
    const ns = this.ns;
    // Only while the sandbox exists: a renewal racing its deletion must not leave an orphan expiry.
    const op = expiresAt === null ? ns.delete().key(EXPIRY + name) : ns.put(EXPIRY + name).value(String(expiresAt));
    await guard(() => ns.if(SANDBOXES + name, 'Version', '>', 0).then(op as never).commit());
  }

  async expiredBy(now: number): Promise<string[]> {
    const expiries = await guard(() => this.ns.getAll().prefix(EXPIRY).strings());
    const names: string[] = [];
    for (const [key, value] of Object.entries(expiries)) if (Number(value) <= now) names.push(key.startsWith(EXPIRY) ? key.slice(EXPIRY.length) : key);
    return names.sort();
  }

  /**
   * Watches the change feed from the revision `load` returned (the only one whose etcd revision this
   * store knows). Changes arrive in order; one that does not follow the previous one is a broken
   * invariant and ends the watch rather than skip a change.
   */
  watch(fromRevision: number, listener: (change: CommittedChange) => void): Unwatch {
    const loaded = this.#loaded;
    if (loaded === null || loaded.revision !== fromRevision) {
      throw new Error(`the etcd store can only watch from the revision it loaded (${loaded?.revision ?? 'none'}), not ${fromRevision}`);
    }
    let last = fromRevision;
    let watcher: Watcher | null = null;
    let stopped = false;
    const lost = (err: Error): void => {
      if (stopped || this.#closed) return;
      stopped = true;
      void watcher?.cancel().catch(() => {});
      this.#onWatchLost(err);
    };
    this.ns
      .watch()
      .key(CHANGE_KEY)
      .startRevision(String(BigInt(loaded.etcdRevision) + 1n))
      .create()
      .then(
        (w) => {
          watcher = w;
          this.#watchers.add(w);
          if (stopped) void w.cancel().catch(() => {});
          w.on('put', (kv) => {
            if (stopped) return;
            const stored = JSON.parse(kv.value.toString('utf8')) as StoredChange;
            if (stored.revision <= last) return; // a replay after a reconnect; already applied
            if (stored.revision !== last + 1) return lost(new WatchLostError(`revision ${stored.revision} after ${last}`));
            last = stored.revision;
            listener(fromStoredChange(stored));
          });
          w.on('error', (err) => lost(new WatchLostError(err.message)));
        },
        (err: Error) => lost(new WatchLostError(err.message)),
      );
    return () => {
      stopped = true;
      if (watcher !== null) {
        this.#watchers.delete(watcher);
        void watcher.cancel().catch(() => {});
      }
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#watchers) void w.cancel().catch(() => {});
    this.#watchers.clear();
    this.client.close();
  }
}

/**
 * Runs one etcd call; a call etcd could not answer (no quorum, no reachable member, the request
 * timeout) becomes 503 LANEWAY_ERR_STORE_UNAVAILABLE. A transaction is all or nothing, so a write
 * that timed out either happened whole or not at all: the client re-reads or re-applies.
 */
export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ControlPlaneError) throw err;
    const name = (err as Error).name ?? '';
    if (isRecoverableError(err as Error) || /DeadlineExceeded|Unavailable|Timeout|Cancelled|GRPCGeneric|Unknown/i.test(name) || /deadline|unavailable|timed out|no connection/i.test((err as Error).message ?? '')) {
      throw new ControlPlaneError('LANEWAY_ERR_STORE_UNAVAILABLE', `etcd did not answer: ${(err as Error).message}`);
    }
    throw err;
  }
}

function clientOptions(config: EtcdConfig): IOptions {
  const tls = config.caFile !== undefined;
  const hosts = config.endpoints.map((e) => `${tls ? 'https' : 'http'}://${e}`);
  const colon = config.user?.indexOf(':') ?? -1;
  return {
    hosts,
    dialTimeout: config.requestTimeoutMs,
    grpcOptions: { 'grpc.max_receive_message_length': ETCD_DEFAULTS.maxReceiveBytes },
    // A deadline on every unary call (not on the watch and keep-alive streams): without quorum etcd
    // holds a write until it can commit, and the API must answer 503 instead of hanging.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + config.requestTimeoutMs }),
    ...(tls
      ? {
          credentials: {
            rootCertificate: readFileSync(config.caFile as string),
            ...(config.keyFile === undefined ? {} : { privateKey: readFileSync(config.keyFile) }),
            ...(config.certFile === undefined ? {} : { certChain: readFileSync(config.certFile) }),
          },
        }
      : {}),
    ...(config.user === undefined || colon < 0 ? {} : { auth: { username: config.user.slice(0, colon), password: config.user.slice(colon + 1) } }),
  };
}

function toStored(r: SandboxRecord): StoredRecord {
  return { name: r.name, canonical: r.canonical, routingKey: r.routingKey, revision: r.revision, createdAt: r.createdAt, updatedAt: r.updatedAt, expiresAt: r.expiresAt };
}

function fromStored(s: StoredRecord): SandboxRecord {
  return Object.freeze({
    name: s.name,
    spec: JSON.parse(s.canonical) as SandboxSpec,
    canonical: s.canonical,
    routingKey: s.routingKey,
    revision: s.revision,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    expiresAt: s.expiresAt,
  });
}

function fromStoredChange(s: StoredChange): CommittedChange {
  return {
    revision: s.revision,
    cause: s.cause,
    ...(s.put === undefined ? {} : { put: fromStored(s.put) }),
    ...(s.deleteName === undefined ? {} : { deleteName: s.deleteName }),
    workloads: s.workloads,
  };
}
