/**
 * One process per data directory: the running service holds an exclusive SQLite lock on `<dataDir>/<file>` (a tiny
 * database in exclusive locking mode, written once at start: the operating system releases the lock when the process
 * exits, even on kill -9, so there is no stale lock to clean up). A second one on the same directory is refused at
 * start with one clear message instead of failing requests later with "database is locked".
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../core/errors.ts';

export class DataDirLock {
  private readonly db: Database.Database;
  readonly path: string;

  private constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
  }

  /** Takes `<dataDir>/<file>`; `what` names the service in the refusal ("pkglog mirror"). Throws 'conflict'. */
  static acquire(dataDir: string, file: string, what: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, file);
    const db = new Database(path, { timeout: 0 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, since INTEGER NOT NULL)');
      db.prepare('INSERT OR REPLACE INTO holder (id, pid, since) VALUES (1, ?, ?)').run(process.pid, Math.floor(Date.now() / 1000));
    } catch (e) {
      db.close();
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
        fail('conflict', `another ${what} is already running on data dir ${dataDir} (it holds ${path}); stop it, or give this one another --data-dir`);
      }
      throw e;
    }
    return new DataDirLock(db, path);
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}
