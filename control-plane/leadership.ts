// Which replica runs the singleton jobs (TTL sweeper, target prober): the one holding the lease.

/**
 * The gate the sweeper and the prober check before each round. With several replicas on a shared
 * store only the lease holder may expire sandboxes and probe targets (one prober's results, one
 * deletion per expiry); a replica that loses the lease stops at its next round.
 */
export interface Leadership {
  /** true while this replica holds the lease */
  readonly leading: boolean;
}

/** One process on its own store (SQLite): always the leader. */
export const SOLE_REPLICA: Leadership = Object.freeze({ leading: true });
