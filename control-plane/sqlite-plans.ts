// Durable plans, their tags and run results: our own tables in the control plane's SQLite file, on its open handle.
import type Database from 'better-sqlite3';
import { LATEST, MAX_RUNS, type PlanListing, type PlanStorage, type PlanVersion, type PutResult, type RunError, type RunFilter, type RunPage, type RunRecord, type RunStatus } from '../model/plans.js';

interface VersionRow {
  name: string;
  version: string;
  /** sorted-key JSON: what "same content" compares */
  canonical: string;
  /** the plan as first stored, key order kept for people reading it */
  document: string;
  created_at: number;
}

interface RunRow {
  id: string;
  name: string;
  version: string;
  sandbox: string | null;
  status: string;
  created_at: number;
  finished_at: number | null;
  result: string | null;
  error: string | null;
}

/**
 * Tables prefixed `plan_` and created IF NOT EXISTS: the sandbox store (sqlite-store.ts) owns the file's
 * schema version (user_version) and its tables; ours live beside them and never touch theirs. Every
 * write is one transaction on the same handle, so it shares the store's durability (WAL, fsync per
 * commit) and its exclusive lock.
 */
export class PlanStore implements PlanStorage {
  readonly #db: Database.Database;
  readonly #getVersion: Database.Statement;
  readonly #latest: Database.Statement;
  readonly #byTag: Database.Statement;
  readonly #tagsOf: Database.Statement;
  readonly #insertVersion: Database.Statement;
  readonly #setTag: Database.Statement;
  readonly #insertRun: Database.Statement;
  readonly #finishRun: Database.Statement;
  readonly #getRun: Database.Statement;
  readonly #pruneRuns: Database.Statement;

  constructor(db: Database.Database) {
    this.#db = db;
    db.exec(`
      CREATE TABLE IF NOT EXISTS plan_versions (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        canonical TEXT NOT NULL,
        document TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (name, version)
      ) STRICT;
      CREATE TABLE IF NOT EXISTS plan_tags (
        name TEXT NOT NULL,
        tag TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (name, tag),
        FOREIGN KEY (name, version) REFERENCES plan_versions (name, version)
      ) STRICT;
      CREATE TABLE IF NOT EXISTS plan_runs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        sandbox TEXT,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        finished_at INTEGER,
        result TEXT,
        error TEXT
      ) STRICT;
      CREATE INDEX IF NOT EXISTS plan_runs_created ON plan_runs (created_at);
    `);
    this.#getVersion = db.prepare('SELECT * FROM plan_versions WHERE name = ? AND version = ?');
    // rowid order is insertion order: "latest" is the version stored last, not the highest-looking string.
    this.#latest = db.prepare('SELECT * FROM plan_versions WHERE name = ? ORDER BY rowid DESC LIMIT 1');
    this.#byTag = db.prepare('SELECT v.* FROM plan_tags t JOIN plan_versions v ON v.name = t.name AND v.version = t.version WHERE t.name = ? AND t.tag = ?');
    this.#tagsOf = db.prepare('SELECT tag FROM plan_tags WHERE name = ? AND version = ? ORDER BY tag');
    this.#insertVersion = db.prepare('INSERT INTO plan_versions (name, version, canonical, document, created_at) VALUES (?, ?, ?, ?, ?)');
    this.#setTag = db.prepare('INSERT INTO plan_tags (name, tag, version) VALUES (?, ?, ?) ON CONFLICT (name, tag) DO UPDATE SET version = excluded.version');
    this.#insertRun = db.prepare('INSERT INTO plan_runs (id, name, version, sandbox, status, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    this.#finishRun = db.prepare('UPDATE plan_runs SET status = ?, finished_at = ?, result = ?, error = ? WHERE id = ?');
    this.#getRun = db.prepare('SELECT * FROM plan_runs WHERE id = ?');
    this.#pruneRuns = db.prepare(`DELETE FROM plan_runs WHERE id IN (SELECT id FROM plan_runs ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ${MAX_RUNS})`);
  }

  /**
   * Stores a version (or finds it identical) and moves `tags` to it. The same version with other
   * content is a conflict and changes nothing: a version names one plan forever, so a result that
   * cites it stays meaningful.
   */
  put(name: string, version: string, document: unknown, canonical: string, tags: readonly string[], now: number): { result: PutResult; version: PlanVersion | undefined } {
    let result = 'unchanged' as PutResult; // assigned inside the transaction callback
    this.#db.transaction(() => {
      const existing = this.#getVersion.get(name, version) as VersionRow | undefined;
      if (existing === undefined) {
        this.#insertVersion.run(name, version, canonical, JSON.stringify(document), now);
        result = 'created';
      } else if (existing.canonical !== canonical) {
        result = 'conflict';
        return;
      }
      const before = new Set((this.#tagsOf.all(name, version) as { tag: string }[]).map((r) => r.tag));
      for (const tag of tags) {
        this.#setTag.run(name, tag, version);
        if (!before.has(tag) && result === 'unchanged') result = 'tagged';
      }
    }).immediate();
    return { result, version: result === 'conflict' ? undefined : this.get(name, version) };
  }

  /** A version by version string, tag, or `latest`. */
  get(name: string, ref: string): PlanVersion | undefined {
    const row = (ref === LATEST ? this.#latest.get(name) : (this.#getVersion.get(name, ref) ?? this.#byTag.get(name, ref))) as VersionRow | undefined;
    return row === undefined ? undefined : this.#toVersion(row);
  }

  /** Every plan with its versions (oldest first) and tags. */
  list(): PlanListing[] {
    const rows = this.#db.prepare('SELECT * FROM plan_versions ORDER BY name, rowid').all() as VersionRow[];
    const tagRows = this.#db.prepare('SELECT name, tag, version FROM plan_tags ORDER BY name, tag').all() as { name: string; tag: string; version: string }[];
    const plans = new Map<string, { name: string; tags: Record<string, string>; versions: PlanVersion[] }>();
    for (const row of rows) {
      let entry = plans.get(row.name);
      if (entry === undefined) plans.set(row.name, (entry = { name: row.name, tags: {}, versions: [] }));
      entry.versions.push(this.#toVersion(row, tagRows));
    }
    for (const t of tagRows) {
      const entry = plans.get(t.name);
      if (entry !== undefined) entry.tags[t.tag] = t.version;
    }
    return [...plans.values()];
  }

  startRun(id: string, name: string, version: string, sandbox: string | null, now: number): void {
    this.#db.transaction(() => {
      this.#insertRun.run(id, name, version, sandbox, 'running', now);
      this.#pruneRuns.run();
    }).immediate();
  }

  finishRun(id: string, status: Exclude<RunStatus, 'running'>, result: unknown, error: RunError | null, now: number): void {
    this.#finishRun.run(status, now, result === null ? null : JSON.stringify(result), error === null ? null : JSON.stringify(error), id);
  }

  listRuns(filter: RunFilter, limit: number, after: string | undefined): RunPage {
    // The cursor is the last row's (created_at, rowid): stable under inserts, which only add newer rows.
    const cursor = after === undefined ? undefined : /^(\d{1,15})\.(\d{1,15})$/.exec(after);
    const rows = this.#db
      .prepare(
        `SELECT rowid, id, name, version, sandbox, status, created_at, finished_at, error, json_extract(result, '$.verdict') AS verdict FROM plan_runs
         WHERE (@plan IS NULL OR name = @plan) AND (@sandbox IS NULL OR sandbox = @sandbox) AND (@status IS NULL OR status = @status)
           AND (@at IS NULL OR created_at < @at OR (created_at = @at AND rowid < @rowid))
         ORDER BY created_at DESC, rowid DESC LIMIT @limit`,
      )
      .all({
        plan: filter.plan ?? null,
        sandbox: filter.sandbox ?? null,
        status: filter.status ?? null,
        at: cursor ? Number(cursor[1]) : null,
        rowid: cursor ? Number(cursor[2]) : null,
        limit: limit + 1,
      }) as (Omit<RunRow, 'result'> & { rowid: number; verdict: string | null })[];
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map((row) => {
        const { result: _none, ...summary } = this.#toRun({ ...row, result: null });
        return { ...summary, verdict: row.verdict };
      }),
      next: rows.length > limit && last !== undefined ? `${last.created_at}.${last.rowid}` : null,
    };
  }

  getRun(id: string): RunRecord | undefined {
    const row = this.#getRun.get(id) as RunRow | undefined;
    if (row === undefined) return undefined;
    return this.#toRun(row);
  }

  #toRun(row: RunRow): RunRecord {
    return {
      id: row.id,
      plan: row.name,
      version: row.version,
      sandbox: row.sandbox,
      status: row.status as RunStatus,
      createdAt: new Date(row.created_at).toISOString(),
      finishedAt: row.finished_at === null ? null : new Date(row.finished_at).toISOString(),
      result: row.result === null ? null : (JSON.parse(row.result) as unknown),
      error: row.error === null ? null : (JSON.parse(row.error) as RunError),
    };
  }

  /** Runs a previous process left `running` (it stopped or crashed mid-run) end as errors, so nobody polls them forever. */
  abandonRunning(now: number, error: RunError): number {
    return this.#db.prepare("UPDATE plan_runs SET status = 'error', finished_at = ?, error = ? WHERE status = 'running'").run(now, JSON.stringify(error)).changes;
  }

  #toVersion(row: VersionRow, tagRows?: readonly { name: string; tag: string; version: string }[]): PlanVersion {
    const tags = tagRows === undefined
      ? (this.#tagsOf.all(row.name, row.version) as { tag: string }[]).map((r) => r.tag)
      : tagRows.filter((t) => t.name === row.name && t.version === row.version).map((t) => t.tag);
    return { name: row.name, version: row.version, tags, createdAt: new Date(row.created_at).toISOString(), plan: JSON.parse(row.document) as unknown };
  }
}
