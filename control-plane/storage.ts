// The control plane's storage seam: what the registry needs from a durable store, whichever store it is (SQLite today).
import type { PlanStorage } from '../model/plans.js';
import type { SandboxSpec } from './spec.js';

export interface SandboxRecord {
  readonly name: string;
  readonly spec: SandboxSpec;
  /** canonical spec JSON, compared to detect an identical apply */
  readonly canonical: string;
  /** the effective key: spec.routingKey, or the one generated at creation (kept across re-applies) */
  readonly routingKey: string;
  /** global revision of the sandbox's last change */
  readonly revision: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** epoch ms; null = no TTL */
  readonly expiresAt: number | null;
}

/** Why a change was made: metrics and logs tell user deletes from TTL expiries. */
export type ChangeCause = 'apply' | 'delete' | 'expire';

/** One change, committed atomically: a sandbox written or removed, and the workloads whose route tables it touches. */
export interface Change {
  readonly cause: ChangeCause;
  readonly put?: SandboxRecord;
  readonly deleteName?: string;
  readonly workloads: readonly string[];
}

/** A change as the store committed it, with the revision it got. Every watcher sees these in revision order. */
export interface CommittedChange extends Change {
  readonly revision: number;
}

export interface Loaded {
  readonly revision: number;
  readonly sandboxes: SandboxRecord[];
  /** workload → global revision of the last change that touched it */
  readonly workloads: Map<string, number>;
}

/** `conflict`: another writer committed since `expected`; nothing was written, re-read and try again. */
export type CommitOutcome = { readonly committed: true; readonly revision: number } | { readonly committed: false; readonly current: number };

export type Unwatch = () => void;

/**
 * A durable, revisioned store of sandboxes. One global revision orders every change; a commit
 * succeeds only against the revision its writer read (compare-and-commit), so two writers — two
 * requests, or two replicas — can never both pass a uniqueness check and lose an update. Every
 * committed change reaches every `watch` listener in revision order, including the writer's own:
 * the registry and the push fan-out are fed from the watch, never from the write path, so a
 * replica that did not make a change still pushes it.
 */
export interface SandboxStorage {
  /** Where the data lives, for the startup line (`/var/lib/laneway`, `etcd://…`). */
  readonly location: string;
  load(): Promise<Loaded>;
  /** Commits `change` as revision `expected + 1` if the store is still at `expected`. Resolves once durable. */
  commit(expected: number, change: Change): Promise<CommitOutcome>;
  /** Renews a TTL lease: not a change (no revision, no event) but durable, so the lease survives a restart. */
  renew(name: string, expiresAt: number | null): Promise<void>;
  /** Names of the sandboxes whose durable expiry is at or before `now`: the sweeper's source of truth. */
  expiredBy(now: number): Promise<string[]>;
  /** Calls `listener` for every change committed after `fromRevision`, in order, until unwatched. */
  watch(fromRevision: number, listener: (change: CommittedChange) => void): Unwatch;
  /** Plans and runs, in the same store. */
  readonly plans: PlanStorage;
  close(): void;
}
