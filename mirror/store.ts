/**
 * The mirror's state on better-sqlite3 (WAL, synchronous=FULL: a commit is on disk when it returns): per configured
 * log its copy (entry bundles and hash tiles, as rows that grow until full), how many entries are stored (the next
 * entry), the pending checkpoints (C2SP tlog-mirror: each consistent with the one before) and the mirror checkpoint
 * (what the monitoring prefix serves, with the mirror's cosignature). Every state change is a compare-and-swap in one
 * synchronous transaction; every statement is an indexed lookup, nothing scans a log's copy.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../core/errors.ts';
import { originHash } from '../core/hash.ts';
import type { Hash } from '../core/types.ts';
import type { IntegratedTile } from '../core/integrate.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY,
  origin TEXT NOT NULL UNIQUE,
  origin_hash TEXT NOT NULL UNIQUE,     -- lowercase hex SHA-256 of the origin (the monitoring path)
  vkey TEXT NOT NULL,                   -- the log's note verifier key
  url TEXT NOT NULL,                    -- the log's URL prefix (tlog-tiles)
  pull INTEGER NOT NULL DEFAULT 1,      -- 1: pull mode (follow <url>/checkpoint and its tiles); 0: the log pushes
  min_index INTEGER NOT NULL DEFAULT 0, -- the copy is pruned below it (tlog-tiles Pruning); a multiple of 256
  next_entry INTEGER NOT NULL DEFAULT 0, -- entries stored: [min_index, next_entry) (the copy is contiguous)
  added_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tiles (
  log INTEGER NOT NULL,
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  data BLOB NOT NULL,                   -- width·32 bytes; a partial tile grows in place until full (with a minimum
  PRIMARY KEY (log, level, idx)         -- index, the tiles straddling it start as the log's prefix below it)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bundles (
  log INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  count INTEGER NOT NULL,               -- entries in it (1…256)
  data BLOB NOT NULL,                   -- C2SP entry bundle bytes
  PRIMARY KEY (log, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
  log INTEGER NOT NULL,
  tree_size INTEGER NOT NULL,
  root BLOB NOT NULL,
  note TEXT NOT NULL,                   -- the checkpoint with the log's signature(s) as received
  added_at INTEGER NOT NULL,
  PRIMARY KEY (log, tree_size)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mirror_checkpoint (
  log INTEGER PRIMARY KEY,
  tree_size INTEGER NOT NULL,
  root BLOB NOT NULL,
  cosigned_at INTEGER NOT NULL,
  note TEXT NOT NULL                    -- log signature(s), other cosignatures received, the mirror's cosignature
);
`;

export interface MirrorLog {
  id: number;
  origin: string;
  originHash: string;
  vkey: string;
  url: string;
  pull: boolean;
  minIndex: number;
  nextEntry: number;
}

export interface StoredCheckpoint {
  treeSize: number;
  root: Hash;
  note: string;
}

export interface MirrorCheckpoint extends StoredCheckpoint {
  cosignedAt: number;
}

/** A hash tile straddling the minimum index, as the log had it at that size (its prefix below the minimum index). */
export interface EdgeTile {
  level: number;
  index: number;
  data: Buffer;
}

export interface BundleWrite {
  index: number;
  count: number;
  data: Buffer;
}

type LogRow = { id: number; origin: string; origin_hash: string; vkey: string; url: string; pull: number; min_index: number; next_entry: number };
const toLog = (r: LogRow): MirrorLog => ({ id: r.id, origin: r.origin, originHash: r.origin_hash, vkey: r.vkey, url: r.url, pull: r.pull === 1, minIndex: r.min_index, nextEntry: r.next_entry });
type CpRow = { tree_size: number; root: Buffer; note: string; cosigned_at?: number };

export const DB_FILE = 'mirror.sqlite';
/**
 * A minimum index is a multiple of the entry bundle width: entry packages are subtrees aligned at 256, and the mirror
 * can authenticate (and serve in a bundle) only entries it holds, so its first package must start a bundle.
 */
export const MIN_INDEX_MULTIPLE = 256;
/** Pending checkpoints kept per log (the spec: accept any of the last several as upload_end). */
export const PENDING_KEPT = 64;

export class MirrorStore {
  readonly db: Database.Database;
  private readonly s;
  private readonly appendTx: (log: number, expectedNext: number, newNext: number, tiles: IntegratedTile[], bundles: BundleWrite[]) => boolean;
  private readonly pendingTx: (log: number, expected: number | null, cp: StoredCheckpoint, now: number) => boolean;
  private readonly checkpointTx: (log: number, cp: MirrorCheckpoint) => boolean;
  private readonly edgeTx: (log: number, tiles: EdgeTile[]) => boolean;

  constructor(path: string) {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    this.db = db;
    this.s = {
      log: db.prepare<[string], LogRow>('SELECT * FROM logs WHERE origin = ?'),
      logById: db.prepare<[number], LogRow>('SELECT * FROM logs WHERE id = ?'),
      logByHash: db.prepare<[string], LogRow>('SELECT * FROM logs WHERE origin_hash = ?'),
      logs: db.prepare<[], LogRow>('SELECT * FROM logs ORDER BY origin'),
      insertLog: db.prepare('INSERT INTO logs (origin, origin_hash, vkey, url, pull, min_index, next_entry, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      insertTile: db.prepare('INSERT INTO tiles (log, level, idx, data) VALUES (?, ?, ?, ?) ON CONFLICT (log, level, idx) DO NOTHING'),
      setLogUrl: db.prepare('UPDATE logs SET url = ?, pull = ? WHERE id = ?'),
      tile: db.prepare<[number, number, number], { data: Buffer }>('SELECT data FROM tiles WHERE log = ? AND level = ? AND idx = ?'),
      putTile: db.prepare('INSERT INTO tiles (log, level, idx, data) VALUES (?, ?, ?, ?) ON CONFLICT (log, level, idx) DO UPDATE SET data = excluded.data'),
      bundle: db.prepare<[number, number], { count: number; data: Buffer }>('SELECT count, data FROM bundles WHERE log = ? AND idx = ?'),
      putBundle: db.prepare('INSERT INTO bundles (log, idx, count, data) VALUES (?, ?, ?, ?) ON CONFLICT (log, idx) DO UPDATE SET count = excluded.count, data = excluded.data'),
      casNext: db.prepare('UPDATE logs SET next_entry = ? WHERE id = ? AND next_entry = ?'),
      latestPending: db.prepare<[number], CpRow>('SELECT tree_size, root, note FROM pending WHERE log = ? ORDER BY tree_size DESC LIMIT 1'),
      pendingAt: db.prepare<[number, number], CpRow>('SELECT tree_size, root, note FROM pending WHERE log = ? AND tree_size = ?'),
      // The same size again (its root was checked equal): keep the newest note, which may carry more cosignatures.
      insertPending: db.prepare('INSERT INTO pending (log, tree_size, root, note, added_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (log, tree_size) DO UPDATE SET note = excluded.note'),
      prunePending: db.prepare(
        'DELETE FROM pending WHERE log = ? AND tree_size < (SELECT tree_size FROM pending WHERE log = ? ORDER BY tree_size DESC LIMIT 1 OFFSET ?)',
      ),
      checkpoint: db.prepare<[number], CpRow & { cosigned_at: number }>('SELECT tree_size, root, note, cosigned_at FROM mirror_checkpoint WHERE log = ?'),
      putCheckpoint: db.prepare(
        `INSERT INTO mirror_checkpoint (log, tree_size, root, cosigned_at, note) VALUES (@log, @size, @root, @at, @note)
         ON CONFLICT (log) DO UPDATE SET tree_size = excluded.tree_size, root = excluded.root, cosigned_at = excluded.cosigned_at, note = excluded.note
         WHERE mirror_checkpoint.tree_size <= excluded.tree_size`,
      ),
    };
    this.appendTx = db.transaction((log: number, expectedNext: number, newNext: number, tiles: IntegratedTile[], bundles: BundleWrite[]) => {
      if (this.s.casNext.run(newNext, log, expectedNext).changes !== 1) return false;
      for (const t of tiles) this.s.putTile.run(log, t.tile.level, t.tile.index, t.data);
      for (const b of bundles) this.s.putBundle.run(log, b.index, b.count, b.data);
      return true;
    });
    this.pendingTx = db.transaction((log: number, expected: number | null, cp: StoredCheckpoint, now: number) => {
      const latest = this.s.latestPending.get(log);
      if ((latest?.tree_size ?? null) !== expected) return false;
      this.s.insertPending.run(log, cp.treeSize, cp.root, cp.note, now);
      this.s.prunePending.run(log, log, PENDING_KEPT - 1);
      return true;
    });
    this.edgeTx = db.transaction((log: number, tiles: EdgeTile[]) => {
      const row = this.s.logById.get(log);
      if (row === undefined || row.next_entry !== row.min_index) return false;
      for (const t of tiles) this.s.insertTile.run(log, t.level, t.index, t.data);
      return true;
    });
    this.checkpointTx = db.transaction((log: number, cp: MirrorCheckpoint) => {
      return this.s.putCheckpoint.run({ log, size: cp.treeSize, root: cp.root, at: cp.cosignedAt, note: cp.note }).changes === 1;
    });
  }

  /** Opens (creating) <dataDir>/mirror.sqlite. */
  static open(dataDir: string): MirrorStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    return new MirrorStore(join(dataDir, DB_FILE));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  isOpen(): boolean {
    if (!this.db.open) return false;
    try {
      this.db.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Adds a log. Re-adding an origin with the same key may change its URL and pull mode; a different key or minimum index is refused
   * ('conflict'): the copy was authenticated against that key.
   */
  addLog(origin: string, vkey: string, url: string, pull: boolean, minIndex: number, now: number): MirrorLog {
    if (!Number.isSafeInteger(minIndex) || minIndex < 0 || minIndex % MIN_INDEX_MULTIPLE !== 0) fail('malformed', `the minimum index must be a multiple of ${MIN_INDEX_MULTIPLE}`);
    const existing = this.s.log.get(origin);
    if (existing !== undefined) {
      if (existing.vkey !== vkey) fail('conflict', `log ${origin} is already mirrored with a different key`);
      if (existing.min_index !== minIndex) fail('conflict', `log ${origin} is already mirrored from minimum index ${existing.min_index}`);
      this.s.setLogUrl.run(url, pull ? 1 : 0, existing.id);
    } else {
      this.s.insertLog.run(origin, originHash(origin), vkey, url, pull ? 1 : 0, minIndex, minIndex, now);
    }
    return toLog(this.s.log.get(origin)!);
  }

  getLog(origin: string): MirrorLog | undefined {
    const r = this.s.log.get(origin);
    return r === undefined ? undefined : toLog(r);
  }

  getLogById(id: number): MirrorLog | undefined {
    const r = this.s.logById.get(id);
    return r === undefined ? undefined : toLog(r);
  }

  getLogByHash(hash: string): MirrorLog | undefined {
    const r = this.s.logByHash.get(hash);
    return r === undefined ? undefined : toLog(r);
  }

  listLogs(): MirrorLog[] {
    return this.s.logs.all().map(toLog);
  }

  /** The stored bytes of a hash tile (its current width), or undefined. */
  tile(log: number, level: number, index: number): Buffer | undefined {
    return this.s.tile.get(log, level, index)?.data;
  }

  bundle(log: number, index: number): { count: number; data: Buffer } | undefined {
    return this.s.bundle.get(log, index);
  }

  /** Appends entries: next_entry CAS from expectedNext to newNext, with the tiles and bundles that changed. One commit. */
  append(log: number, expectedNext: number, newNext: number, tiles: IntegratedTile[], bundles: BundleWrite[]): boolean {
    return this.appendTx(log, expectedNext, newNext, tiles, bundles);
  }

  /**
   * Stores the tiles straddling the minimum index (authenticated by the caller) while no entry is stored yet; a tile
   * already there is kept (the same authenticated bytes). False when entries are stored already.
   */
  putEdge(log: number, tiles: EdgeTile[]): boolean {
    return this.edgeTx(log, tiles);
  }

  latestPending(log: number): StoredCheckpoint | undefined {
    const r = this.s.latestPending.get(log);
    return r === undefined ? undefined : { treeSize: r.tree_size, root: r.root, note: r.note };
  }

  pendingAt(log: number, treeSize: number): StoredCheckpoint | undefined {
    const r = this.s.pendingAt.get(log, treeSize);
    return r === undefined ? undefined : { treeSize: r.tree_size, root: r.root, note: r.note };
  }

  /** The pending checkpoint advances by CAS on the latest pending size (null: none yet). Re-adding the latest is a no-op. */
  advancePending(log: number, expected: number | null, cp: StoredCheckpoint, now: number): boolean {
    return this.pendingTx(log, expected, cp, now);
  }

  mirrorCheckpoint(log: number): MirrorCheckpoint | undefined {
    const r = this.s.checkpoint.get(log);
    return r === undefined ? undefined : { treeSize: r.tree_size, root: r.root, note: r.note, cosignedAt: r.cosigned_at };
  }

  /** Stores the mirror checkpoint unless a larger one is stored already (never rewinds). True if stored. */
  putMirrorCheckpoint(log: number, cp: MirrorCheckpoint): boolean {
    return this.checkpointTx(log, cp);
  }
}
