/**
 * The data dir's single-process lock: a small SQLite file (`log.lock`) held in exclusive locking mode for as long as
 * the log runs. Only one sequencer ever signs checkpoints for a log; the database itself stays shared (WAL), so
 * `pkglog backup` and `pkglog fsck` can read it from another process while the log runs.
 */
import Database from 'better-sqlite3';
import { fail } from '../core/errors.ts';

export class DataDirLock {
  private db: Database.Database | undefined;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /** Takes the lock at `path` or throws 'overloaded' naming the file when another process holds it. */
  static acquire(path: string, holder = `pkglog pid ${process.pid}`): DataDirLock {
    const db = new Database(path);
    try {
      db.pragma('busy_timeout = 0');
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = DELETE');
      // A write in exclusive locking mode keeps the EXCLUSIVE file lock until the connection closes.
      db.exec('BEGIN IMMEDIATE');
      db.exec('CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), who TEXT NOT NULL, since INTEGER NOT NULL)');
      db.prepare('INSERT INTO holder (id, who, since) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET who = excluded.who, since = excluded.since')
        .run(holder, Date.now());
      db.exec('COMMIT');
    } catch (e) {
      db.close();
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') fail('overloaded', `${path} is in use by another pkglog process`);
      throw e;
    }
    return new DataDirLock(db);
  }

  release(): void {
    this.db?.close();
    this.db = undefined;
  }
}
