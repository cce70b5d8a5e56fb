/**
 * Versioned schema migrations for both backends: a `schema_migrations` table (version, name, applied_at) and ordered
 * numbered steps (SQLite: log-store/schema.ts SQLITE_MIGRATIONS; PostgreSQL: log-store/pg-schema.ts PG_MIGRATIONS).
 * Each step runs in its own transaction together with its row in schema_migrations, so a step is applied exactly
 * once or not at all. Running them again is a no-op. A database with a version newer than this pkglog knows is
 * refused (an older binary never writes to a newer schema).
 *
 * - SQLite: run by LogStore.open (the log holds its data-dir lock then; `pkglog migrate --data-dir` takes that lock
 *   too). A database made before migrations existed has `meta.schema_version = 1` and no schema_migrations table:
 *   step 1 (its schema, all CREATE … IF NOT EXISTS) is recorded as applied.
 * - PostgreSQL: run under a transaction-level advisory lock (pg_advisory_xact_lock), so several processes starting at
 *   once apply each step once, the others waiting and then finding nothing to do.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { fail } from '../core/errors.ts';
import { PG_MIGRATIONS, type Migration } from './pg-schema.ts';
import { SQLITE_MIGRATIONS } from './schema.ts';

export type { Migration };

/** The advisory lock key of pkglog's migrations (any constant; "pkglog" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x706b676c6f67;

export interface MigrationResult {
  /** The schema version before and after. */
  from: number;
  to: number;
  /** The steps applied now (empty: already up to date). */
  applied: Array<{ version: number; name: string }>;
}

export const LATEST_SQLITE_VERSION = SQLITE_MIGRATIONS[SQLITE_MIGRATIONS.length - 1]!.version;
export const LATEST_PG_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;

function checkOrder(steps: Migration[]): void {
  steps.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.version} out of order`);
  });
}
checkOrder(SQLITE_MIGRATIONS);
checkOrder(PG_MIGRATIONS);

const SQLITE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at INTEGER NOT NULL
)`;

/** Applies the pending SQLite steps (synchronously: one transaction per step, nothing awaited). */
export function migrateSqlite(db: Database.Database, now = Date.now()): MigrationResult {
  db.exec(SQLITE_TABLE);
  const current = (): number => (db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  let from = current();
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
  if (from === 0 && hasMeta) {
    // Made before schema_migrations existed: meta.schema_version says which steps it has.
    const v = (db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined)?.value;
    if (v !== undefined) {
      if (!/^[1-9][0-9]{0,5}$/.test(v)) fail('internal', `unsupported store schema version ${v}`);
      const known = Number(v);
      if (known > LATEST_SQLITE_VERSION) fail('internal', `unsupported store schema version ${v} (newer than this pkglog knows)`);
      db.transaction(() => {
        const ins = db.prepare('INSERT OR IGNORE INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
        for (const m of SQLITE_MIGRATIONS.filter((x) => x.version <= known)) ins.run(m.version, `${m.name} (recorded from meta.schema_version)`, now);
      })();
      from = current();
    }
  }
  if (from > LATEST_SQLITE_VERSION) fail('internal', `unsupported store schema version ${from} (newer than this pkglog knows)`);
  const applied: MigrationResult['applied'] = [];
  for (const m of SQLITE_MIGRATIONS.filter((x) => x.version > from)) {
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, now);
      // Kept for tools that read it (and for an older pkglog, which refuses anything but the version it knows).
      db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(m.version));
    })();
    applied.push({ version: m.version, name: m.name });
  }
  return { from, to: current(), applied };
}

/** The SQLite schema version without changing anything (0: no schema_migrations table and no schema_version). */
export function sqliteSchemaVersion(db: Database.Database): number {
  const t = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (t !== undefined) return (db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  const m = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  if (m === undefined) return 0;
  const v = (db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined)?.value;
  return v === undefined ? 0 : Number(v);
}

const PG_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

/** Applies the pending PostgreSQL steps, each in a transaction holding the migration advisory lock. */
export async function migratePostgres(pool: pg.Pool, now = Date.now()): Promise<MigrationResult> {
  const client = await pool.connect();
  try {
    let from: number | undefined;
    const applied: MigrationResult['applied'] = [];
    for (;;) {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
        await client.query(PG_TABLE);
        const r = await client.query<{ v: number | null }>('SELECT max(version)::int AS v FROM schema_migrations');
        const current = r.rows[0]?.v ?? 0;
        from ??= current;
        if (current > LATEST_PG_VERSION) fail('internal', `the database has schema version ${current}, newer than this pkglog knows (${LATEST_PG_VERSION})`);
        const next = PG_MIGRATIONS.find((m) => m.version === current + 1);
        if (next === undefined) {
          await client.query('COMMIT');
          return { from, to: current, applied };
        }
        await client.query(next.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [next.version, next.name, now]);
        await client.query('COMMIT');
        applied.push({ version: next.version, name: next.name });
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw e;
      }
    }
  } finally {
    client.release();
  }
}

/** Which PostgreSQL steps are pending, and the version when it is newer than this pkglog knows. */
export async function postgresMigrationStatus(pool: pg.Pool): Promise<{ current: number; pending: number[]; newer?: number }> {
  const t = await pool.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  const current = t.rows[0]?.t == null ? 0 : (await pool.query<{ v: number | null }>('SELECT max(version)::int AS v FROM schema_migrations')).rows[0]?.v ?? 0;
  return {
    current,
    pending: PG_MIGRATIONS.filter((m) => m.version > current).map((m) => m.version),
    ...(current > LATEST_PG_VERSION ? { newer: current } : {}),
  };
}

/** Opens the SQLite file (which must exist) and applies its pending steps. The caller holds the data dir's lock. */
export function migrateSqliteFile(dbPath: string): MigrationResult {
  const db = new Database(dbPath, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    return migrateSqlite(db);
  } finally {
    db.close();
  }
}

/** Connects to the PostgreSQL database and applies its pending steps (under the advisory lock). */
export async function migratePostgresUrl(url: string): Promise<MigrationResult> {
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => {});
  try {
    try {
      await pool.query('SELECT 1');
    } catch (e) {
      fail('network', `cannot reach the PostgreSQL database ${redactUrl(url)}: ${(e as Error).message}`);
    }
    return await migratePostgres(pool);
  } finally {
    await pool.end().catch(() => {});
  }
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}
