// Stored plan versions and runs: the wire shapes of /v1/plans and /v1/runs and the storage seam behind them.
// Generic over the plan document and the run result, which validate/ defines: storage keeps them as JSON.

export type RunStatus = 'running' | 'passed' | 'failed' | 'error';

export interface PlanVersion<P = unknown> {
  readonly name: string;
  readonly version: string;
  readonly tags: readonly string[];
  readonly createdAt: string;
  readonly plan: P;
}

export interface RunError {
  readonly code: string;
  readonly message: string;
}

export interface RunRecord<R = unknown> {
  readonly id: string;
  readonly plan: string;
  readonly version: string;
  readonly sandbox: string | null;
  readonly status: RunStatus;
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly result: R | null;
  readonly error: RunError | null;
}

/** A run in a listing: everything but the (possibly large) result. */
export type RunSummary = Omit<RunRecord, 'result'> & { readonly verdict: string | null };

export interface RunFilter {
  readonly plan?: string;
  readonly sandbox?: string;
  readonly status?: RunStatus;
}

/** A page of runs, newest first; `next` is the cursor of the following page, null at the end. */
export interface RunPage {
  readonly items: RunSummary[];
  readonly next: string | null;
}

/** Runs per page by default, and at most. */
export const RUNS_PAGE_DEFAULT = 50;
export const RUNS_PAGE_MAX = 500;

export interface PlanListing<P = unknown> {
  readonly name: string;
  /** tag → version */
  readonly tags: Record<string, string>;
  /** oldest first */
  readonly versions: PlanVersion<P>[];
}

/** `latest` always means the newest version, so it cannot be a tag. */
export const LATEST = 'latest';
/** Finished runs kept; older ones are dropped as new ones arrive (results can be large). */
export const MAX_RUNS = 1000;

/** What storing a version did; `conflict`: the same version is stored with other content (nothing changed). */
export type PutResult = 'created' | 'unchanged' | 'tagged' | 'conflict';

/**
 * Where plans and runs live: the control plane's SQLite file today (control-plane/sqlite-plans.ts).
 * Documents are opaque JSON here; validate/ reads them back as the types it validated on the way in.
 */
export interface PlanStorage<P = unknown, R = unknown> {
  /** Stores a version (or finds it identical, by `canonical`) and moves `tags` to it; `version` is undefined on conflict. */
  put(name: string, version: string, document: P, canonical: string, tags: readonly string[], now: number): { result: PutResult; version: PlanVersion<P> | undefined };
  /** A version by version string, tag, or `latest`. */
  get(name: string, ref: string): PlanVersion<P> | undefined;
  list(): PlanListing<P>[];
  startRun(id: string, name: string, version: string, sandbox: string | null, now: number): void;
  finishRun(id: string, status: Exclude<RunStatus, 'running'>, result: R | null, error: RunError | null, now: number): void;
  getRun(id: string): RunRecord<R> | undefined;
  /** Runs matching `filter`, newest first, `limit` of them after the cursor `after` (a `next` from an earlier page). */
  listRuns(filter: RunFilter, limit: number, after: string | undefined): RunPage;
  /** Runs a previous process left `running` end as errors; returns how many. */
  abandonRunning(now: number, error: RunError): number;
}
