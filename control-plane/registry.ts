// The sandbox registry: apply/delete/expire with conflict checks, one durable commit per change, then its deltas pushed.
import type { Route } from '../model/route-table.js';
import { ControlPlaneError } from '../model/api-errors.js';
import type { Push, WorkloadDelta } from './push.js';
import { generateRoutingKey, type ValidSpec } from './spec.js';
import type { SandboxRecord, Store } from './store.js';

export type ApplyResult = 'created' | 'configured' | 'unchanged';

export interface RegistryHooks {
  /** a change reached the watchers; `startedAt` is performance.now() before the commit */
  changed(op: 'apply' | 'delete' | 'expire', startedAt: number): void;
  /** targets to probe now (new sandboxes should not wait a probe interval for their phase) */
  targetsAdded(targets: readonly string[]): void;
}

/** The routes one sandbox contributes: one per fork, keyed by workload. */
export function routesOf(record: SandboxRecord): Map<string, Route> {
  const routes = new Map<string, Route>();
  for (const fork of record.spec.forks) {
    routes.set(fork.workload, Object.freeze({ key: record.routingKey, sandbox: record.name, targets: fork.targets }));
  }
  return routes;
}

function sameRoute(a: Route, b: Route): boolean {
  if (a.key !== b.key || a.sandbox !== b.sandbox) return false;
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
export function diffRoutes(before: SandboxRecord | undefined, after: SandboxRecord | undefined): WorkloadDelta[] {
  const old = before === undefined ? new Map<string, Route>() : routesOf(before);
  const next = after === undefined ? new Map<string, Route>() : routesOf(after);
  const deltas: WorkloadDelta[] = [];
  for (const [workload, route] of next) {
    const previous = old.get(workload);
    if (previous === undefined || !sameRoute(previous, route)) deltas.push({ workload, type: 'upsert', route });
  }
  for (const [workload, route] of old) if (!next.has(workload)) deltas.push({ workload, type: 'delete', route });
  return deltas;
}

export class Registry {
  readonly #store: Store;
  readonly #push: Push;
  readonly #hooks: RegistryHooks;
  readonly #sandboxes = new Map<string, SandboxRecord>();
  /** routing key → sandbox name: keys are unique across sandboxes */
  readonly #keys = new Map<string, string>();
  #revision: number;

  constructor(store: Store, push: Push, hooks: RegistryHooks) {
    this.#store = store;
    this.#push = push;
    this.#hooks = hooks;
    const loaded = store.load();
    this.#revision = loaded.revision;
    const routes: { workload: string; route: Route }[] = [];
    for (const record of loaded.sandboxes) {
      this.#sandboxes.set(record.name, record);
      this.#keys.set(record.routingKey, record.name);
      for (const [workload, route] of routesOf(record)) routes.push({ workload, route });
    }
    push.restore(loaded.workloads, routes);
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

  list(): SandboxRecord[] {
    return [...this.#sandboxes.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Every distinct fork target, for the prober. */
  *targets(): Iterable<string> {
    const seen = new Set<string>();
    for (const record of this.#sandboxes.values()) {
      for (const fork of record.spec.forks) {
        for (const target of Object.values(fork.targets)) {
          if (!seen.has(target)) {
            seen.add(target);
            yield target;
          }
        }
      }
    }
  }

  /**
   * Create-or-replace. Identical specs change nothing (no revision, no events) but renew the TTL
   * lease: re-applying is how a CI job keeps its sandbox alive. Synchronous from the checks to the
   * commit, so two requests cannot both pass the key check.
   */
  apply(name: string, valid: ValidSpec, now: number): { record: SandboxRecord; result: ApplyResult } {
    const startedAt = performance.now();
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
    const expiresAt = valid.ttlMs === undefined ? null : now + valid.ttlMs;

    if (existing !== undefined && existing.canonical === valid.canonical && existing.routingKey === routingKey) {
      if (existing.expiresAt === expiresAt) return { record: existing, result: 'unchanged' };
      this.#store.setExpiry(name, expiresAt);
      const renewed = Object.freeze({ ...existing, expiresAt });
      this.#sandboxes.set(name, renewed);
      return { record: renewed, result: 'unchanged' };
    }

    const revision = this.#revision + 1;
    const record: SandboxRecord = Object.freeze({
      name,
      spec: valid.spec,
      canonical: valid.canonical,
      routingKey,
      revision,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      expiresAt,
    });
    const deltas = diffRoutes(existing, record);
    this.#store.commit({ revision, put: record, workloads: deltas.map((d) => d.workload) });
    // Durable from here on: update memory, then push before the caller acknowledges.
    this.#revision = revision;
    this.#sandboxes.set(name, record);
    if (existing !== undefined && existing.routingKey !== routingKey) this.#keys.delete(existing.routingKey);
    this.#keys.set(routingKey, name);
    this.#push.publish(revision, deltas);
    this.#hooks.changed('apply', startedAt);
    this.#hooks.targetsAdded(record.spec.forks.flatMap((f) => Object.values(f.targets)));
    return { record, result: existing === undefined ? 'created' : 'configured' };
  }

  /** Deletes a sandbox; returns the revision of the deletion. Throws 404 when there is none. */
  delete(name: string, op: 'delete' | 'expire' = 'delete'): number {
    const startedAt = performance.now();
    const existing = this.#sandboxes.get(name);
    if (existing === undefined) {
      throw new ControlPlaneError('LANEWAY_ERR_SANDBOX_NOT_FOUND', `sandbox ${name} does not exist`, 'name');
    }
    const revision = this.#revision + 1;
    const deltas = diffRoutes(existing, undefined);
    this.#store.commit({ revision, deleteName: name, workloads: deltas.map((d) => d.workload) });
    this.#revision = revision;
    this.#sandboxes.delete(name);
    this.#keys.delete(existing.routingKey);
    this.#push.publish(revision, deltas);
    this.#hooks.changed(op, startedAt);
    return revision;
  }

  /** Deletes every sandbox whose TTL ran out by `now` (also those that expired while we were down). */
  expire(now: number): string[] {
    const expired: string[] = [];
    for (const record of this.#sandboxes.values()) {
      if (record.expiresAt !== null && record.expiresAt <= now) expired.push(record.name);
    }
    for (const name of expired) this.delete(name, 'expire');
    return expired;
  }

  #freshKey(): string {
    // 100 random bits: a collision is astronomically unlikely, but checking costs one Map lookup.
    let key = generateRoutingKey();
    while (this.#keys.has(key)) key = generateRoutingKey();
    return key;
  }
}
