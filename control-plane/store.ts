// Durable storage: sandboxes, the global revision and per-workload revisions in one SQLite file (WAL, fsync per commit).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { SandboxSpec } from './spec.js';

export const DB_FILE = 'laneway.db';
const SCHEMA_VERSION = 1;

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

/** One change, written in one transaction: the new global revision, the sandbox row, the touched workloads. */
export interface Commit {
  readonly revision: number;
  readonly put?: SandboxRecord;
  readonly deleteName?: string;
  readonly workloads: readonly string[];
}

export interface Loaded {
  readonly revision: number;
  readonly sandboxes: SandboxRecord[];
  /** workload → global revision of the last change that touched it */
  readonly workloads: Map<string, number>;
}

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
 * The only module that touches the disk. better-sqlite3 is synchronous: a commit returns after
 * SQLite has fsynced the WAL (synchronous=FULL), so the caller can acknowledge the write and a
 * `kill -9` (or power loss) right after loses nothing. Being synchronous also means a
 * check-then-write in the registry cannot interleave with another request.
 */
export class Store {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #putSandbox: Database.Statement;
  readonly #deleteSandbox: Database.Statement;
  readonly #setRevision: Database.Statement;
  readonly #setWorkload: Database.Statement;
  readonly #setExpiry: Database.Statement;
  readonly #commit: (commit: Commit) => void;

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.#db = db;
    this.#putSandbox = db.prepare(
      `INSERT INTO sandboxes (name, routing_key, spec, revision, created_at, updated_at, expires_at)
       VALUES (@name, @routing_key, @spec, @revision, @created_at, @updated_at, @expires_at)
       ON CONFLICT(name) DO UPDATE SET routing_key = excluded.routing_key, spec = excluded.spec,
         revision = excluded.revision, updated_at = excluded.updated_at, expires_at = excluded.expires_at`,
    );
    this.#deleteSandbox = db.prepare('DELETE FROM sandboxes WHERE name = ?');
    this.#setRevision = db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'");
    this.#setWorkload = db.prepare(
      'INSERT INTO workloads (name, revision) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET revision = excluded.revision',
    );
    this.#setExpiry = db.prepare('UPDATE sandboxes SET expires_at = ? WHERE name = ?');
    this.#commit = db.transaction((c: Commit) => {
      this.#setRevision.run(c.revision);
      if (c.deleteName !== undefined) this.#deleteSandbox.run(c.deleteName);
      if (c.put !== undefined) this.#putSandbox.run(toRow(c.put));
      for (const workload of c.workloads) this.#setWorkload.run(workload, c.revision);
    });
  }

  /** Opens (creating when missing) `<dataDir>/laneway.db` and takes an exclusive lock on it. */
  static open(dataDir: string): Store {
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
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new StoreLockedError(path);
      throw err;
    }
    return new Store(path, db);
  }

  load(): Loaded {
    const revision = (this.#db.prepare("SELECT value FROM meta WHERE key = 'revision'").get() as { value: number }).value;
    const rows = this.#db.prepare('SELECT * FROM sandboxes ORDER BY name').all() as SandboxRow[];
    const workloads = new Map<string, number>();
    for (const row of this.#db.prepare('SELECT name, revision FROM workloads').all() as { name: string; revision: number }[]) {
      workloads.set(row.name, row.revision);
    }
    return { revision, sandboxes: rows.map(fromRow), workloads };
  }

  /** Writes one change atomically and durably; throws (and writes nothing) on failure. */
  commit(commit: Commit): void {
    this.#commit(commit);
  }

  /** Renews a TTL lease: not a change (no revision), but durable so the lease survives a restart. */
  setExpiry(name: string, expiresAt: number | null): void {
    this.#setExpiry.run(expiresAt, name);
  }

  /**
   * The open handle, for modules that keep their own tables in this file (control-plane/plan-store.ts):
   * a second connection cannot open it while we hold the exclusive lock. They must not touch ours.
   */
  get db(): Database.Database {
    return this.#db;
  }

  close(): void {
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
