// Route tables per workload, versioned: the current routes, a cached snapshot and a bounded log of deltas for resume. No I/O.
import type { Route, RouteSnapshot } from '../model/route-table.js';

/** One workload's part of a change. A sandbox forks a workload at most once, so a change has at most one delta per workload. */
export type WorkloadDelta =
  | { readonly workload: string; readonly type: 'upsert'; readonly route: Route }
  | { readonly workload: string; readonly type: 'delete'; readonly route: Route };

export type EventKind = 'snapshot' | 'upsert' | 'delete';

/**
 * Turns an event into what the transport sends (push.ts: the SSE bytes), once per change and
 * workload, so the log keeps encoded events and 1,000 watchers share one encoding.
 */
export type EncodeEvent<E> = (revision: number, kind: EventKind, data: string) => E;

class WorkloadRoutes<E> {
  revision = 0;
  /** sandbox name → its route for this workload */
  readonly routes = new Map<string, Route>();
  /** resumes from any revision in [floor, revision] are served from `log` */
  floor = 0;
  readonly log: { readonly revision: number; readonly event: E }[] = [];
  /** cached, invalidated by each change: 1,000 watchers connecting serialize the snapshot once */
  #snapshotJson: string | null = null;
  #snapshotEvent: E | null = null;
  readonly workload: string;

  constructor(workload: string) {
    this.workload = workload;
  }

  snapshotJson(): string {
    if (this.#snapshotJson === null) {
      const routes = [...this.routes.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const snapshot: RouteSnapshot = { workload: this.workload, revision: this.revision, routes };
      this.#snapshotJson = JSON.stringify(snapshot);
    }
    return this.#snapshotJson;
  }

  snapshotEvent(encode: EncodeEvent<E>): E {
    if (this.#snapshotEvent === null) this.#snapshotEvent = encode(this.revision, 'snapshot', this.snapshotJson());
    return this.#snapshotEvent;
  }

  invalidate(): void {
    this.#snapshotJson = null;
    this.#snapshotEvent = null;
  }
}

/** What a watcher starting at `lastEventId` must be sent first: the deltas after it, or a snapshot. */
export type Catchup<E> = { readonly kind: 'deltas'; readonly events: readonly E[] } | { readonly kind: 'snapshot'; readonly event: E };

export class RouteCache<E> {
  readonly #workloads = new Map<string, WorkloadRoutes<E>>();
  readonly #deltaLogSize: number;
  readonly #encode: EncodeEvent<E>;
  /** the global revision this cache has applied (every change, whether it touched a workload or not) */
  #seen = 0;

  constructor(deltaLogSize: number, encode: EncodeEvent<E>) {
    this.#deltaLogSize = deltaLogSize;
    this.#encode = encode;
  }

  /** Records that the change at global `revision` has been applied (called for every change, in order). */
  seen(revision: number): void {
    this.#seen = revision;
  }

  /** The global revision applied so far: a client's Last-Event-ID above it is ahead of this replica (or from another store). */
  get revision(): number {
    return this.#seen;
  }

  /** workloads some change touched */
  get size(): number {
    return this.#workloads.size;
  }

  /** Loads the state recovered from the store; the delta log starts empty (older resumes get a snapshot). */
  restore(workloadRevisions: ReadonlyMap<string, number>, routes: Iterable<{ workload: string; route: Route }>, revision = 0): void {
    this.#seen = revision;
    for (const [workload, revision] of workloadRevisions) {
      const state = this.#state(workload);
      state.revision = revision;
      state.floor = revision;
    }
    for (const { workload, route } of routes) this.#state(workload).routes.set(route.sandbox, route);
  }

  /** The snapshot body (RouteSnapshot JSON), cached; revision 0 and no routes for a workload never touched. */
  snapshotJson(workload: string): string {
    const state = this.#workloads.get(workload);
    if (state !== undefined) return state.snapshotJson();
    return JSON.stringify({ workload, revision: 0, routes: [] } satisfies RouteSnapshot);
  }

  /** every workload some change touched */
  workloads(): IterableIterator<string> {
    return this.#workloads.keys();
  }

  /** the highest revision of any workload (0 when nothing was ever forked) */
  latestRevision(): number {
    let latest = 0;
    for (const state of this.#workloads.values()) if (state.revision > latest) latest = state.revision;
    return latest;
  }

  revisionOf(workload: string): number {
    return this.#workloads.get(workload)?.revision ?? 0;
  }

  /** Applies one workload's delta of a committed change; returns its encoded event, now in the log. */
  apply(revision: number, delta: WorkloadDelta): E {
    const state = this.#state(delta.workload);
    let data: string;
    if (delta.type === 'upsert') {
      state.routes.set(delta.route.sandbox, delta.route);
      data = JSON.stringify({ revision, route: delta.route });
    } else {
      state.routes.delete(delta.route.sandbox);
      data = JSON.stringify({ revision, key: delta.route.key });
    }
    state.revision = revision;
    state.invalidate();
    const event = this.#encode(revision, delta.type, data);
    state.log.push({ revision, event });
    if (state.log.length > this.#deltaLogSize) state.floor = (state.log.shift() as { revision: number }).revision;
    return event;
  }

  /** With a `lastEventId` whose following deltas are all still in the log, those deltas; otherwise a snapshot. */
  catchup(workload: string, lastEventId: number | undefined, clientAhead = false): Catchup<E> {
    // A sidecar that failed over from a replica further along than this one: a snapshot from here
    // would move its table back in time. Nothing now; the changes this replica has not seen yet
    // follow as deltas (the sidecar skips the ones it already has, by revision).
    if (clientAhead) return { kind: 'deltas', events: [] };
    const state = this.#workloads.get(workload);
    // A workload nothing touched gets no state here, so watching made-up names cannot grow memory.
    if (state === undefined) {
      if (lastEventId === 0) return { kind: 'deltas', events: [] };
      return { kind: 'snapshot', event: this.#encode(0, 'snapshot', this.snapshotJson(workload)) };
    }
    if (lastEventId !== undefined && lastEventId >= state.floor && lastEventId <= state.revision) {
      let first = state.log.length;
      while (first > 0 && state.log[first - 1]!.revision > lastEventId) first--;
      return { kind: 'deltas', events: state.log.slice(first).map((entry) => entry.event) };
    }
    return { kind: 'snapshot', event: state.snapshotEvent(this.#encode) };
  }

  #state(workload: string): WorkloadRoutes<E> {
    let state = this.#workloads.get(workload);
    if (state === undefined) {
      state = new WorkloadRoutes(workload);
      this.#workloads.set(workload, state);
    }
    return state;
  }
}
