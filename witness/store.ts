/**
 * The witness's state on better-sqlite3 (WAL): the configured logs and peers, the latest cosigned checkpoint per
 * origin (advanced only by compare-and-swap), every checkpoint it ever cosigned (history, indexed by time), and fork
 * evidence. Every statement is an indexed lookup; nothing scans a log's history.
 *
 * Durability is synchronous=FULL's — every commit's WAL frames are fsynced before anyone is told it happened — but the
 * fsync of the compare-and-swaps runs off the event loop: SQLite commits with synchronous=NORMAL (no fsync at commit;
 * its checkpoints still sync), then `durable()` fsyncs the WAL file on libuv's thread pool, one fsync for every commit
 * made since the last one started, and add-checkpoint answers after it (witness/commit-queue.ts). The event loop keeps
 * verifying and signing meanwhile instead of waiting for the disk. The rare other writes fsync at once (syncNow).
 */
import Database from 'better-sqlite3';
import { closeSync, fsync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { fail } from '../core/errors.ts';
import { originHash } from '../core/hash.ts';
import type { Hash } from '../core/types.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS logs (
  origin TEXT PRIMARY KEY,
  origin_hash TEXT NOT NULL UNIQUE,     -- lowercase hex SHA-256 of the origin (monitoring URLs)
  vkey TEXT NOT NULL,                   -- the log's note verifier key
  url TEXT,                             -- set: pull mode (poll <url>/checkpoint, build proofs from tiles)
  added_at INTEGER NOT NULL,
  frozen_evidence INTEGER               -- unused since fork evidence no longer stops cosigning (kept for old files)
);
CREATE TABLE IF NOT EXISTS latest (
  origin TEXT PRIMARY KEY,
  tree_size INTEGER NOT NULL,
  root BLOB NOT NULL,
  cosigned_at INTEGER NOT NULL,         -- cosignature timestamp, unix seconds
  note TEXT NOT NULL                    -- checkpoint + log signature(s) + this witness's cosignature
);
CREATE TABLE IF NOT EXISTS history (
  origin TEXT NOT NULL,
  tree_size INTEGER NOT NULL,
  root BLOB NOT NULL,
  cosigned_at INTEGER NOT NULL,         -- the FIRST cosignature of this size
  note TEXT NOT NULL,
  PRIMARY KEY (origin, tree_size)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_by_time ON history (origin, cosigned_at, tree_size);
CREATE TABLE IF NOT EXISTS peers (
  url TEXT PRIMARY KEY,
  vkey TEXT NOT NULL,
  added_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  origin TEXT NOT NULL,
  digest TEXT NOT NULL UNIQUE,          -- SHA-256 of the evidence text (deduplication)
  found_at INTEGER NOT NULL,
  source TEXT NOT NULL,
  evidence TEXT NOT NULL
);
`;

export interface LogConfig {
  origin: string;
  originHash: string;
  vkey: string;
  url: string | null;
}

export interface CosignedCheckpoint {
  origin: string;
  treeSize: number;
  root: Hash;
  cosignedAt: number;
  note: string;
}

export interface PeerConfig {
  url: string;
  vkey: string;
}

export interface EvidenceRecord {
  id: number;
  origin: string;
  foundAt: number;
  source: string;
  evidence: string;
}

/** The size and root of the latest cosigned checkpoint: what add-checkpoint's checks need (not the note). */
export interface LatestHead {
  treeSize: number;
  root: Hash;
}

/** A compare-and-swap of the latest checkpoint: applies only if the stored size is still `expectedSize` (null: none stored). */
export interface AdvanceOp {
  expectedSize: number | null;
  checkpoint: CosignedCheckpoint;
}


type LogRow = { origin: string; origin_hash: string; vkey: string; url: string | null };
type CpRow = { origin: string; tree_size: number; root: Buffer; cosigned_at: number; note: string };
type EvRow = { id: number; origin: string; found_at: number; source: string; evidence: string };

const toLog = (r: LogRow): LogConfig => ({ origin: r.origin, originHash: r.origin_hash, vkey: r.vkey, url: r.url });
const toCp = (r: CpRow): CosignedCheckpoint => ({ origin: r.origin, treeSize: r.tree_size, root: r.root, cosignedAt: r.cosigned_at, note: r.note });
const toEv = (r: EvRow): EvidenceRecord => ({ id: r.id, origin: r.origin, foundAt: r.found_at, source: r.source, evidence: r.evidence });

export const DB_FILE = 'witness.sqlite';

export class WitnessStore {
  readonly db: Database.Database;
  private readonly s;
  private readonly advanceTx: (ops: AdvanceOp[]) => boolean[];
  private readonly evidenceTx: (origin: string, text: string, source: string, now: number) => { id: number; isNew: boolean };
  /** The WAL file, open for fsync (SQLite keeps the file while a connection is open: same inode throughout). */
  private readonly walFd: number;
  /** The fsync in flight, and the one that will follow it (shared by every commit made meanwhile). */
  private syncing: Promise<void> | undefined;
  private nextSync: Promise<void> | undefined;
  /** A compare-and-swap was committed after the newest fsync started. */
  private dirty = false;

  constructor(path: string) {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL'); // + durable() / syncNow(): see the header
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    this.db = db;
    this.walFd = openSync(`${path}-wal`, 'r');
    this.s = {
      log: db.prepare<[string], LogRow>('SELECT * FROM logs WHERE origin = ?'),
      logByHash: db.prepare<[string], LogRow>('SELECT * FROM logs WHERE origin_hash = ?'),
      logs: db.prepare<[], LogRow>('SELECT * FROM logs ORDER BY origin'),
      insertLog: db.prepare('INSERT INTO logs (origin, origin_hash, vkey, url, added_at) VALUES (?, ?, ?, ?, ?)'),
      setLogUrl: db.prepare('UPDATE logs SET url = ? WHERE origin = ?'),
      latest: db.prepare<[string], CpRow>('SELECT * FROM latest WHERE origin = ?'),
      latestHead: db.prepare<[string], { tree_size: number; root: Buffer }>('SELECT tree_size, root FROM latest WHERE origin = ?'),
      insertLatest: db.prepare(
        `INSERT INTO latest (origin, tree_size, root, cosigned_at, note) VALUES (@origin, @size, @root, @at, @note)
         ON CONFLICT (origin) DO NOTHING`,
      ),
      casLatest: db.prepare(
        'UPDATE latest SET tree_size = @size, root = @root, cosigned_at = @at, note = @note WHERE origin = @origin AND tree_size = @expected',
      ),
      insertHistory: db.prepare('INSERT OR IGNORE INTO history (origin, tree_size, root, cosigned_at, note) VALUES (?, ?, ?, ?, ?)'),
      historyAt: db.prepare<[string, number], CpRow>('SELECT * FROM history WHERE origin = ? AND tree_size = ?'),
      historyBefore: db.prepare<[string, number], CpRow>(
        'SELECT * FROM history WHERE origin = ? AND cosigned_at <= ? ORDER BY cosigned_at DESC, tree_size DESC LIMIT 1',
      ),
      peers: db.prepare<[], PeerConfig>('SELECT url, vkey FROM peers ORDER BY url'),
      upsertPeer: db.prepare('INSERT INTO peers (url, vkey, added_at) VALUES (?, ?, ?) ON CONFLICT (url) DO UPDATE SET vkey = excluded.vkey'),
      evidenceByDigest: db.prepare<[string], { id: number }>('SELECT id FROM evidence WHERE digest = ?'),
      insertEvidence: db.prepare('INSERT INTO evidence (origin, digest, found_at, source, evidence) VALUES (?, ?, ?, ?, ?)'),
      evidenceList: db.prepare<[], EvRow>('SELECT * FROM evidence ORDER BY id'),
      evidenceCount: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM evidence'),
      evidence: db.prepare<[number], EvRow>('SELECT * FROM evidence WHERE id = ?'),
    };
    this.advanceTx = db.transaction((ops: AdvanceOp[]) =>
      ops.map(({ expectedSize, checkpoint: c }) => {
        const p = { origin: c.origin, size: c.treeSize, root: c.root, at: c.cosignedAt, note: c.note };
        const changes = expectedSize === null ? this.s.insertLatest.run(p).changes : this.s.casLatest.run({ ...p, expected: expectedSize }).changes;
        if (changes !== 1) return false;
        this.s.insertHistory.run(c.origin, c.treeSize, c.root, c.cosignedAt, c.note);
        return true;
      }),
    );
    this.evidenceTx = db.transaction((origin: string, text: string, source: string, now: number) => {
      const digest = createHash('sha256').update(text).digest('hex');
      const existing = this.s.evidenceByDigest.get(digest);
      const id = existing?.id ?? Number(this.s.insertEvidence.run(origin, digest, now, source, text).lastInsertRowid);
      return { id, isNew: existing === undefined };
    });
  }

  /** Opens (creating) <dataDir>/witness.sqlite. */
  static open(dataDir: string): WitnessStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    return new WitnessStore(join(dataDir, DB_FILE));
  }

  close(): void {
    if (this.db.open) {
      this.db.close();
      closeSync(this.walFd);
    }
  }

  /**
   * Resolves once every commit made before the call is on disk (an fsync of the WAL that started after it). One
   * fsync at a time; callers arriving while one runs share the next; nothing to wait for when nothing was committed
   * since the last fsync started. Whatever carries a cosignature waits for it before leaving the process.
   */
  durable(): Promise<void> {
    if (!this.dirty) return this.syncing ?? Promise.resolve();
    if (this.syncing === undefined) return this.startSync();
    this.nextSync ??= this.syncing.then(
      () => this.startSync(),
      () => this.startSync(),
    );
    return this.nextSync;
  }

  private startSync(): Promise<void> {
    this.nextSync = undefined;
    this.dirty = false;
    const p = new Promise<void>((resolve, reject) => fsync(this.walFd, (e) => (e ? reject(e) : resolve())));
    this.syncing = p;
    const done = () => {
      if (this.syncing === p) this.syncing = undefined;
    };
    p.then(done, done);
    return p;
  }

  /** The WAL fsynced now (synchronously): after the rare writes other than add-checkpoint's. */
  private syncNow(): void {
    fsyncSync(this.walFd);
    this.dirty = false;
  }

  /**
   * Adds a log. Re-adding an origin with the same key may change its URL; a different key is refused
   * ('conflict'): there is no casual way to replace or remove a log, since that could cosign a split view.
   */
  addLog(origin: string, vkey: string, url: string | null, now: number): LogConfig {
    const existing = this.s.log.get(origin);
    if (existing !== undefined) {
      if (existing.vkey !== vkey) fail('conflict', `log ${origin} is already configured with a different key`);
      if (url !== null && url !== existing.url) this.s.setLogUrl.run(url, origin);
    } else {
      this.s.insertLog.run(origin, originHash(origin), vkey, url, now);
    }
    this.syncNow();
    return toLog(this.s.log.get(origin)!);
  }

  getLog(origin: string): LogConfig | undefined {
    const r = this.s.log.get(origin);
    return r === undefined ? undefined : toLog(r);
  }

  getLogByHash(hash: string): LogConfig | undefined {
    const r = this.s.logByHash.get(hash);
    return r === undefined ? undefined : toLog(r);
  }

  listLogs(): LogConfig[] {
    return this.s.logs.all().map(toLog);
  }

  addPeer(url: string, vkey: string, now: number): void {
    this.s.upsertPeer.run(url, vkey, now);
    this.syncNow();
  }

  listPeers(): PeerConfig[] {
    return this.s.peers.all();
  }

  latest(origin: string): CosignedCheckpoint | undefined {
    const r = this.s.latest.get(origin);
    return r === undefined ? undefined : toCp(r);
  }

  /** The latest cosigned size and root (without reading the note). */
  latestHead(origin: string): LatestHead | undefined {
    const r = this.s.latestHead.get(origin);
    return r === undefined ? undefined : { treeSize: r.tree_size, root: r.root };
  }

  /**
   * Applies the compare-and-swaps in ONE transaction (group commit); true for each op that applied. Durable once
   * `durable()` resolves (witness/commit-queue.ts waits for it before anyone is answered).
   */
  advance(ops: AdvanceOp[]): boolean[] {
    const applied = this.advanceTx(ops);
    this.dirty = true;
    return applied;
  }

  historyAt(origin: string, treeSize: number): CosignedCheckpoint | undefined {
    const r = this.s.historyAt.get(origin, treeSize);
    return r === undefined ? undefined : toCp(r);
  }

  /** The newest checkpoint first cosigned at or before `time` (unix seconds). */
  historyBefore(origin: string, time: number): CosignedCheckpoint | undefined {
    const r = this.s.historyBefore.get(origin, time);
    return r === undefined ? undefined : toCp(r);
  }

  /**
   * Records evidence (deduplicated by digest). The log is NOT frozen: tlog-witness says a witness MUST cosign when
   * every check passes, and the checks (against the latest cosigned checkpoint) already refuse the fork's branch.
   */
  recordEvidence(origin: string, text: string, source: string, now: number): { id: number; isNew: boolean } {
    const r = this.evidenceTx(origin, text, source, now);
    this.syncNow();
    return r;
  }

  /** How many pieces of fork evidence are recorded (a count, for metrics). */
  evidenceCount(): number {
    return this.s.evidenceCount.get()!.n;
  }

  /** Open and answering: a trivial query succeeds (readiness). */
  isOpen(): boolean {
    if (!this.db.open) return false;
    try {
      this.db.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }

  listEvidence(): EvidenceRecord[] {
    return this.s.evidenceList.all().map(toEv);
  }

  getEvidence(id: number): EvidenceRecord | undefined {
    const r = this.s.evidence.get(id);
    return r === undefined ? undefined : toEv(r);
  }
}
