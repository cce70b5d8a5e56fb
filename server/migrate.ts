/** `pkglog migrate`: applies the pending schema migrations of a SQLite data dir or a PostgreSQL database. */
import { existsSync } from 'node:fs';
import { fail } from '../core/errors.ts';
import { DataDirLock } from '../log-store/lock.ts';
import { migratePostgresUrl, migrateSqliteFile, redactUrl, type MigrationResult } from '../log-store/migrations.ts';

export interface MigrateReport extends MigrationResult {
  /** The store: the SQLite file or the URL without its password. */
  location: string;
}

/** SQLite: under the data dir's lock (refused while the log runs: it migrates at its own start, under that lock). */
export function migrateDataDir(lockPath: string, dbPath: string): MigrateReport {
  if (!existsSync(dbPath)) fail('not_found', `${dbPath} does not exist (a new log creates it at its first start)`);
  const lock = DataDirLock.acquire(lockPath, `pkglog migrate pid ${process.pid}`);
  try {
    return { location: dbPath, ...migrateSqliteFile(dbPath) };
  } finally {
    lock.release();
  }
}

/** PostgreSQL: each step under the migration advisory lock (safe while logs run on the database). */
export async function migrateDatabase(url: string): Promise<MigrateReport> {
  return { location: redactUrl(url), ...(await migratePostgresUrl(url)) };
}

export function formatMigration(r: MigrateReport): string {
  if (r.applied.length === 0) return `pkglog migrate: ${r.location} is at schema version ${r.to} (up to date)`;
  return [`pkglog migrate: ${r.location}: schema version ${r.from} → ${r.to}`, ...r.applied.map((m) => `  applied ${m.version}: ${m.name}`)].join('\n');
}
