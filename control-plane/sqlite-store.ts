// The embedded store: sandboxes, the global revision, per-workload revisions, plans and runs in one SQLite file (WAL, fsync per commit).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { PlanStorage } from '../model/plans.js';
import { PlanStore } from './sqlite-plans.js';
import type { SandboxSpec } from './spec.js';
import type { Change, CommitOutcome, CommittedChange, Loaded, SandboxRecord, SandboxStorage, Unwatch } from './storage.js';

export const DB_FILE = 'laneway.db';
const SCHEMA_VERSION = 1;

interface SandboxRow {
  name: string;
  routing_key: string;
  spec: string;
  revision: number;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
}

export class StoreLockedError extends Error {
  constructor(path: string) {
    super(`${path} is in use by another control plane (one process per data directory)`);
    this.name = 'StoreLockedError';
  }
}

/**
 * The only module (with its plan tables, sqlite-plans.ts) that touches SQLite. better-sqlite3 is
 * synchronous: a commit returns after SQLite has fsynced the WAL (synchronous=FULL), so the caller
 * can acknowledge the write and a `kill -9` (or power loss) right after loses nothing. One process
 * holds the file (exclusive lock), so the compare in compare-and-commit only fails on a writer
 * that read a stale revision; the watch is in-process and runs inside `commit`, before it resolves.
 */
export class SqliteStore implements SandboxStorage {
  readonly location: string;
  readonly plans: PlanStorage;
  readonly #db: Database.Database;
  readonly #putSandbox: Database.Statement;
  readonly #deleteSandbox: Database.Statement;
  readonly #getRevision: Database.Statement;
  readonly #setRevision: Database.Statement;
  readonly #setWorkload: Database.Statement;
  readonly #setExpiry: Database.Statement;
  readonly #expired: Database.Statement;
  /** revision written, or the current one when `expected` was stale */
  readonly #commit: (expected: number, change: Change) => CommitOutcome;
  readonly #listeners = new Set<(change: CommittedChange) => void>();

  private constructor(path: string, db: Database.Database) {
    this.location = path;
    this.#db = db;
    this.#putSandbox = db.prepare(
      `INSERT INTO sandboxes (name, routing_key, spec, revision, created_at, updated_at, expires_at)
       VALUES (@name, @routing_key, @spec, @revision, @created_at, @updated_at, @expires_at)
       ON CONFLICT(name) DO UPDATE SET routing_key = excluded.routing_key, spec = excluded.spec,
         revision = excluded.revision, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
    );
    this.#deleteSandbox = db.prepare('DELETE FROM sandboxes WHERE name = ?');
    this.#getRevision = db.prepare("SELECT value FROM meta WHERE key = 'revision'").pluck();
    this.#setRevision = db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'");
    this.#setWorkload = db.prepare(
      'INSERT INTO workloads (name, revision) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET revision = excluded.revision',
    );
    this.#setExpiry = db.prepare('UPDATE sandboxes SET expires_at = ? WHERE name = ?');
    this.#expired = db.prepare('SELECT name FROM sandboxes WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY name').pluck();
    this.#commit = db.transaction((expected: number, c: Change): CommitOutcome => {
      const current = this.#getRevision.get() as number;
      if (current !== expected) return { committed: false, current };
      const revision = current + 1;
      if (c.put !== undefined && c.put.revision !== revision) throw new Error(`record revision ${c.put.revision} is not the commit's ${revision}`);
      this.#setRevision.run(revision);
      if (c.deleteName !== undefined) this.#deleteSandbox.run(c.deleteName);
      if (c.put !== undefined) this.#putSandbox.run(toRow(c.put));
      for (const workload of c.workloads) this.#setWorkload.run(workload, revision);
      return { committed: true, revision };
    });
    this.plans = new PlanStore(db);
  }

  /** Opens (creating when missing) `<dataDir>/laneway.db` and takes an exclusive lock on it. */
  static open(dataDir: string): SqliteStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, DB_FILE);
    // Only another process can hold the lock (one connection here); fail fast rather than wait for it.
    const db = new Database(path, { timeout: 250 });
    try {
      // EXCLUSIVE before WAL: SQLite then keeps the WAL index in heap memory (no -shm file) and the
      // file lock stays held, so a second control plane on the same directory fails instead of
      // silently diverging from our in-memory state. The OS drops the lock when we die (kill -9).
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      // FULL: fsync the WAL on every commit. NORMAL would be faster but can lose the last commits on
      // power loss, and we acknowledge writes as durable.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      return new SqliteStore(path, db);
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new StoreLockedError(path);
      throw err;
    }
  }

  async load(): Promise<Loaded> {
    const revision = this.#getRevision.get() as number;
    const rows = this.#db.prepare('SELECT * FROM sandboxes ORDER BY name').all() as SandboxRow[];
    const workloads = new Map<string, number>();
    for (const row of this.#db.prepare('SELECT name, revision FROM workloads').all() as { name: string; revision: number }[]) {
      workloads.set(row.name, row.revision);
    }
    return { revision, sandboxes: rows.map(fromRow), workloads };
  }

  /** Writes one change atomically and durably (throws, writing nothing, on a disk error), then tells the watchers. */
  async commit(expected: number, change: Change): Promise<CommitOutcome> {
    const outcome = this.#commit(expected, change);
    if (outcome.committed) {
      const committed: CommittedChange = { ...change, revision: outcome.revision };
      for (const listener of this.#listeners) listener(committed);
    }
    return outcome;
  }

  async renew(name: string, expiresAt: number | null): Promise<void> {
    this.#setExpiry.run(expiresAt, name);
  }

  async expiredBy(now: number): Promise<string[]> {
    return this.#expired.all(now) as string[];
  }

  /**
   * SQLite keeps no change log, and no other process writes the file: a watch can only start at the
   * current revision (load, then watch, with nothing awaited in between).
   */
  watch(fromRevision: number, listener: (change: CommittedChange) => void): Unwatch {
    const current = this.#getRevision.get() as number;
    if (fromRevision !== current) throw new Error(`the SQLite store can only watch from its current revision ${current}, not ${fromRevision}`);
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#listeners.clear();
    if (this.#db.open) this.#db.close();
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`the database schema is version ${version}, newer than this laneway (${SCHEMA_VERSION}); upgrade laneway`);
  }
  // Runs even at the current version: the write takes the exclusive lock now, at startup, rather
  // than at the first client write.
  db.transaction(() => {
    if (version < 1) {
      db.exec(`
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
        INSERT INTO meta (key, value) VALUES ('revision', 0);
        CREATE TABLE sandboxes (
          name TEXT PRIMARY KEY,
          routing_key TEXT NOT NULL UNIQUE,
          spec TEXT NOT NULL,
          revision INTEGER NOT NULL,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          expires_at INTEGER
        ) STRICT;
        CREATE TABLE workloads (name TEXT PRIMARY KEY, revision INTEGER NOT NULL) STRICT;
      `);
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

function toRow(r: SandboxRecord): SandboxRow {
  return {
    name: r.name,
    routing_key: r.routingKey,
    spec: r.canonical,
    revision: r.revision,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
    expires_at: r.expiresAt,
  };
}

function fromRow(row: SandboxRow): SandboxRecord {
  const spec = JSON.parse(row.spec) as SandboxSpec;
  return Object.freeze({
    name: row.name,
    spec,
    canonical: row.spec,
    routingKey: row.routing_key,
    revision: row.revision,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
  });
}
