// The sandbox registry: apply/delete/expire with conflict checks and compare-and-commit; its state and the pushed deltas follow the store's watch.
import { LANE_SCHEME, type Route } from '../model/route-table.js';
import { ControlPlaneError } from '../model/api-errors.js';
import type { WorkloadDelta } from './route-cache.js';
import { LOCAL_TARGET } from '../model/lanes.js';
import { generateRoutingKey, type ValidSpec } from './spec.js';
import type { Change, ChangeCause, CommittedChange, SandboxRecord, SandboxStorage, Unwatch } from './storage.js';

export type ApplyResult = 'created' | 'configured' | 'unchanged';

/**
 * A write whose compare failed this many times in a row (other writers kept committing first)
 * gives up with 503 LANEWAY_ERR_STORE_CONTENDED rather than retry without bound.
 */
export const MAX_COMMIT_ATTEMPTS = 5;
/**
 * …and keeps retrying past those attempts while the write is younger than this: with several
 * replicas, one whose queue keeps winning could otherwise starve another's write into a 503.
 */
export const CONTENTION_BUDGET_MS = 2_000;
/** The first retry after a lost compare waits up to this long (doubling per attempt), so contending replicas spread out. */
export const CONFLICT_JITTER_MS = 2;
/** How long a writer waits for the watch to bring it a revision the store reported (its own commit, or a newer one). */
export const WATCH_CATCH_UP_MS = 10_000;

export interface RegistryHooks {
  /** the route state loaded from the store at start */
  restored(workloads: ReadonlyMap<string, number>, routes: Iterable<{ workload: string; route: Route }>, revision: number): void;
  /** one committed change as per-workload deltas, in revision order: every change, whichever writer or replica made it */
  published(revision: number, deltas: readonly WorkloadDelta[]): void;
  /** this process's write reached the watchers; `startedAt` is performance.now() before the commit */
  changed(cause: ChangeCause, startedAt: number): void;
  /** targets to probe now (new sandboxes should not wait a probe interval for their phase) */
  targetsAdded(targets: readonly string[]): void;
}

/**
 * Where sidecars send a local fork's requests: the lane relay's address, or — on a control plane
 * without a relay (a local fork stored by an earlier run with --lane-listen) — a port nothing listens
 * on, so the sidecar answers 502 instead of sending the sandbox's requests to the baseline.
 */
export const NO_RELAY_TARGET = '127.0.0.1:1';

/** The routes one sandbox contributes: one per fork, keyed by workload; `local` targets become `lane://<relay>`. */
export function routesOf(record: SandboxRecord, relay: string = NO_RELAY_TARGET): Map<string, Route> {
  const routes = new Map<string, Route>();
  for (const fork of record.spec.forks) {
    let targets = fork.targets;
    if (Object.values(targets).includes(LOCAL_TARGET)) {
      targets = Object.freeze(Object.fromEntries(Object.entries(targets).map(([port, t]) => [port, t === LOCAL_TARGET ? LANE_SCHEME + relay : t])));
    }
    const capture = record.spec.capture;
    routes.set(fork.workload, Object.freeze(capture === undefined ? { key: record.routingKey, sandbox: record.name, targets } : { key: record.routingKey, sandbox: record.name, targets, capture }));
  }
  return routes;
}

function sameRoute(a: Route, b: Route): boolean {
  if (a.key !== b.key || a.sandbox !== b.sandbox) return false;
  if (JSON.stringify(a.capture) !== JSON.stringify(b.capture)) return false;
  const ports = Object.keys(a.targets);
  if (ports.length !== Object.keys(b.targets).length) return false;
  for (const port of ports) if (a.targets[port] !== b.targets[port]) return false;
  return true;
}

/**
 * What a sandbox change means per workload: an `upsert` where its route is new or different (a new
 * key included: the sidecar drops the sandbox's old key itself), a `delete` where its fork is gone.
 * Workloads whose route did not change get nothing.
 */
export function diffRoutes(before: SandboxRecord | undefined, after: SandboxRecord | undefined, relay?: string): WorkloadDelta[] {
  const old = before === undefined ? new Map<string, Route>() : routesOf(before, relay);
  const next = after === undefined ? new Map<string, Route>() : routesOf(after, relay);
  const deltas: WorkloadDelta[] = [];
  for (const [workload, route] of next) {
    const previous = old.get(workload);
    if (previous === undefined || !sameRoute(previous, route)) deltas.push({ workload, type: 'upsert', route });
  }
  for (const [workload, route] of old) if (!next.has(workload)) deltas.push({ workload, type: 'delete', route });
  return deltas;
}

/**
 * The in-memory view of the store, kept current by its watch (never by the write path), and the
 * rules a write must pass. A write reads this view, checks it, and commits against the revision it
 * read; if another writer got there first the compare fails, the watch brings the newer state, and
 * the write is checked again on it. So correctness holds whether the store answers synchronously
 * (SQLite) or over the network (several replicas).
 */
export class Registry {
  readonly #store: SandboxStorage;
  readonly #hooks: RegistryHooks;
  readonly #sandboxes = new Map<string, SandboxRecord>();
  /** routing key → sandbox name: keys are unique across sandboxes */
  readonly #keys = new Map<string, string>();
  /** writers waiting for the watch to reach a revision */
  readonly #waiters: { readonly revision: number; readonly resolve: () => void }[] = [];
  readonly #unwatch: Unwatch;
  /** what `local` fork targets are published as (the lane relay's address) */
  readonly #relay: string | undefined;
  #revision: number;

  /** Loads the store's state and watches it from there (nothing awaited in between, so no change is missed). */
  static async open(store: SandboxStorage, hooks: RegistryHooks, relay?: string): Promise<Registry> {
    const loaded = await store.load();
    return new Registry(store, hooks, loaded, relay);
  }

  private constructor(store: SandboxStorage, hooks: RegistryHooks, loaded: Awaited<ReturnType<SandboxStorage['load']>>, relay: string | undefined) {
    this.#store = store;
    this.#hooks = hooks;
    this.#relay = relay;
    this.#revision = loaded.revision;
    const routes: { workload: string; route: Route }[] = [];
    for (const record of loaded.sandboxes) {
      this.#sandboxes.set(record.name, record);
      this.#keys.set(record.routingKey, record.name);
      for (const [workload, route] of routesOf(record, relay)) routes.push({ workload, route });
    }
    hooks.restored(loaded.workloads, routes, loaded.revision);
    this.#unwatch = store.watch(loaded.revision, (change) => this.#follow(change));
  }

  get revision(): number {
    return this.#revision;
  }

  get size(): number {
    return this.#sandboxes.size;
  }

  get(name: string): SandboxRecord | undefined {
    return this.#sandboxes.get(name);
  }

  /** The sandbox a routing key belongs to. */
  byKey(key: string): SandboxRecord | undefined {
    const name = this.#keys.get(key);
    return name === undefined ? undefined : this.#sandboxes.get(name);
  }

  list(): SandboxRecord[] {
    return [...this.#sandboxes.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Every distinct fork target, for the prober. */
  *targets(): Iterable<string> {
    const seen = new Set<string>();
    for (const record of this.#sandboxes.values()) {
      for (const fork of record.spec.forks) {
        for (const target of Object.values(fork.targets)) {
          // A local fork's health is its lane's, not a TCP probe's.
          if (target !== LOCAL_TARGET && !seen.has(target)) {
            seen.add(target);
            yield target;
          }
        }
      }
    }
  }

  /**
   * Create-or-replace. Identical specs change nothing (no revision, no events) but renew the TTL
   * lease: re-applying is how a CI job keeps its sandbox alive.
   */
  apply(name: string, valid: ValidSpec, now: number): Promise<{ record: SandboxRecord; result: ApplyResult }> {
    return this.#serial(() => this.#apply(name, valid, now));
  }

  async #apply(name: string, valid: ValidSpec, now: number): Promise<{ record: SandboxRecord; result: ApplyResult }> {
    const startedAt = performance.now();
    const expiresAt = valid.ttlMs === undefined ? null : now + valid.ttlMs;
    for (let attempt = 1; ; attempt++) {
      const existing = this.#sandboxes.get(name);
      const routingKey = valid.spec.routingKey ?? existing?.routingKey ?? this.#freshKey();
      const owner = this.#keys.get(routingKey);
      if (owner !== undefined && owner !== name) {
        throw new ControlPlaneError(
          'LANEWAY_ERR_KEY_CONFLICT',
          `spec.routingKey: routing key ${routingKey} is already used by sandbox ${owner}`,
          'spec.routingKey',
        );
      }

      if (existing !== undefined && existing.canonical === valid.canonical && existing.routingKey === routingKey) {
        if (existing.expiresAt === expiresAt) return { record: existing, result: 'unchanged' };
        await this.#store.renew(name, expiresAt);
        const renewed = Object.freeze({ ...existing, expiresAt });
        // Only if nothing replaced it meanwhile: a newer version keeps its own lease.
        if (this.#sandboxes.get(name) === existing) this.#sandboxes.set(name, renewed);
        return { record: renewed, result: 'unchanged' };
      }

      const record: SandboxRecord = Object.freeze({
        name,
        spec: valid.spec,
        canonical: valid.canonical,
        routingKey,
        revision: this.#revision + 1,
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
        expiresAt,
      });
      const workloads = diffRoutes(existing, record, this.#relay).map((d) => d.workload);
      if (await this.#commit({ cause: 'apply', put: record, workloads }, startedAt, attempt)) {
        return { record, result: existing === undefined ? 'created' : 'configured' };
      }
    }
  }

  /** Deletes a sandbox; returns the revision of the deletion. Throws 404 when there is none. */
  delete(name: string, cause: 'delete' | 'expire' = 'delete'): Promise<number> {
    return this.#serial(() => this.#delete(name, cause));
  }

  async #delete(name: string, cause: 'delete' | 'expire'): Promise<number> {
    const startedAt = performance.now();
    for (let attempt = 1; ; attempt++) {
      const existing = this.#sandboxes.get(name);
      if (existing === undefined) {
        throw new ControlPlaneError('LANEWAY_ERR_SANDBOX_NOT_FOUND', `sandbox ${name} does not exist`, 'name');
      }
      const workloads = diffRoutes(existing, undefined, this.#relay).map((d) => d.workload);
      const revision = this.#revision + 1;
      if (await this.#commit({ cause, deleteName: name, workloads }, startedAt, attempt)) return revision;
    }
  }

  /** Deletes every sandbox whose durable TTL ran out by `now` (also those that expired while we were down). */
  async expire(now: number): Promise<string[]> {
    const expired: string[] = [];
    for (const name of await this.#store.expiredBy(now)) {
      try {
        await this.delete(name, 'expire');
        expired.push(name);
      } catch (err) {
        // Deleted by someone else meanwhile: nothing left to expire.
        if (!(err instanceof ControlPlaneError && err.code === 'LANEWAY_ERR_SANDBOX_NOT_FOUND')) throw err;
      }
    }
    return expired;
  }

  /**
   * One write of this process at a time, check to acknowledgement. Every commit is against the one
   * global revision, so two writes of one replica that read the same view would both commit against
   * it and all but one lose the compare; over the network (etcd) a burst of concurrent requests
   * would then exhaust its retries. Queued here, each reads the view the previous one left. Writers
   * on other replicas still contend through the compare. (SQLite commits synchronously: no change.)
   */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #queue: Promise<unknown> = Promise.resolve();

  /** Stops following the store (before it closes). */
  close(): void {
    this.#unwatch();
  }

  /**
   * Commits against the revision this view is at. true: committed, and the watch has applied it
   * (so the caller's acknowledgement follows the push). false: another writer was first; the view
   * has caught up with it and the caller re-checks.
   */
  async #commit(change: Change, startedAt: number, attempt: number): Promise<boolean> {
    const outcome = await this.#store.commit(this.#revision, change);
    if (outcome.committed) {
      await this.#caughtUp(outcome.revision);
      this.#hooks.changed(change.cause, startedAt);
      return true;
    }
    if (attempt >= MAX_COMMIT_ATTEMPTS && performance.now() - startedAt >= CONTENTION_BUDGET_MS) throw new ControlPlaneError('LANEWAY_ERR_STORE_CONTENDED');
    await this.#caughtUp(outcome.current);
    // Replicas that lost the same compare would otherwise retry in lockstep and collide again:
    // a full-jitter pause (up to 2, 4, 8, 16 ms) lets one through first.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * CONFLICT_JITTER_MS * 2 ** (attempt - 1)));
    return false;
  }

  /** Applies one committed change, whoever made it: memory, then the deltas to push, then the waiting writers. */
  #follow(change: CommittedChange): void {
    const name = change.put?.name ?? change.deleteName;
    const before = name === undefined ? undefined : this.#sandboxes.get(name);
    if (before !== undefined) this.#keys.delete(before.routingKey);
    if (change.put !== undefined) {
      this.#sandboxes.set(change.put.name, change.put);
      this.#keys.set(change.put.routingKey, change.put.name);
    } else if (change.deleteName !== undefined) {
      this.#sandboxes.delete(change.deleteName);
    }
    this.#revision = change.revision;
    this.#hooks.published(change.revision, diffRoutes(before, change.put, this.#relay));
    if (change.put !== undefined) this.#hooks.targetsAdded(change.put.spec.forks.flatMap((f) => Object.values(f.targets)).filter((t) => t !== LOCAL_TARGET));
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i]!;
      if (waiter.revision <= change.revision) {
        this.#waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  /** Resolves once the watch has brought this view to `revision` (at once with an in-process store). */
  #caughtUp(revision: number): Promise<void> {
    if (this.#revision >= revision) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new ControlPlaneError('LANEWAY_ERR_STORE_CONTENDED', `the store's watch did not reach revision ${revision} within ${WATCH_CATCH_UP_MS} ms`));
      }, WATCH_CATCH_UP_MS);
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.push(waiter);
    });
  }

  #freshKey(): string {
    // 100 random bits: a collision is astronomically unlikely, but checking costs one Map lookup.
    let key = generateRoutingKey();
    while (this.#keys.has(key)) key = generateRoutingKey();
    return key;
  }
}
