/**
 * The log's persistence on better-sqlite3: WAL, synchronous=FULL. Every read is an indexed lookup (O(log n));
 * a batch is appended in ONE transaction that advances the tree by compare-and-swap.
 *
 * LogStore is the synchronous store (fsck, backup and the bulk bench builder use it directly); SqliteStore is the
 * log's asynchronous Store (log-store/types.ts) over it: every method runs the synchronous statement and returns a
 * settled Promise, so a transaction never spans an await.
 */
import { existsSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { fail } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';
import type { Tile } from '../core/tiles.ts';
import { LATEST_SQLITE_VERSION, migrateSqlite, sqliteSchemaVersion } from './migrations.ts';

import type { AppendBatch, AppendHook, EntryRef, StoredTile, Store, TreeState } from './types.ts';

export type { AppendBatch, EntryRef, Store, StoredEntry, StoredTile, StoreKind, TreeState } from './types.ts';
export { MAX_PAGE } from './types.ts';

/**
 * The tiles table's key: level · 2^46 + index. Tile indexes stay below 2^45 for trees below 2^53; an index or level
 * outside that range would alias another tile's key, so it throws 'out_of_range' instead.
 */
export function tileId(level: number, index: number): number {
  if (!Number.isInteger(level) || level < 0 || level > 63 || !Number.isSafeInteger(index) || index < 0 || index >= 2 ** 46) {
    fail('out_of_range', `tile ${level}/${index} is outside any tree this log can hold`);
  }
  return level * 2 ** 46 + index;
}

/** Which file a path names: device and inode (a replaced or deleted file no longer has them). */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** The identity of the file at `path` now, or undefined when there is none. */
export function fileIdentity(path: string): FileIdentity | undefined {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined;
    throw e;
  }
}

export class LogStore {
  readonly db: Database.Database;
  /** The database file, and the identity it had when this store opened it. */
  readonly path: string;
  readonly identity: FileIdentity;
  private readonly stmts;

  private constructor(db: Database.Database, path: string, identity: FileIdentity) {
    this.db = db;
    this.path = path;
    this.identity = identity;
    this.stmts = {
      tree: db.prepare<[], { tree_size: number; root_hash: Buffer; checkpoint: string }>('SELECT tree_size, root_hash, checkpoint FROM tree WHERE id = 1'),
      initTree: db.prepare('INSERT INTO tree (id, tree_size, root_hash, checkpoint) VALUES (1, ?, ?, ?)'),
      casTree: db.prepare('UPDATE tree SET tree_size = ?, root_hash = ?, checkpoint = ? WHERE id = 1 AND tree_size = ?'),
      insertEntry: db.prepare(
        'INSERT INTO entries (idx, leaf, leaf_hash, file_hash, ecosystem, name, version, sha256, integrated_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      upsertTile: db.prepare(
        'INSERT INTO tiles (id, level, idx, width, data, inner) VALUES (?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT (id) DO UPDATE SET width = excluded.width, data = excluded.data, inner = excluded.inner',
      ),
      tileWithInner: db.prepare<[number], { width: number; data: Buffer; inner: Buffer | null }>('SELECT width, data, inner FROM tiles WHERE id = ?'),
      insertCheckpoint: db.prepare('INSERT INTO checkpoints (tree_size, root_hash, note, created_at) VALUES (?, ?, ?, ?)'),
      tile: db.prepare<[number], { width: number; data: Buffer }>('SELECT width, data FROM tiles WHERE id = ?'),
      entry: db.prepare<[number], { leaf: Buffer }>('SELECT leaf FROM entries WHERE idx = ?'),
      // pluck: the leaves themselves, no row object per entry (a bundle is 256 of them)
      entryRange: db.prepare<[number, number], Buffer>('SELECT leaf FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx').pluck(),
      entryRows: db.prepare<[number, number], { idx: number; leaf: Buffer; leaf_hash: Buffer }>(
        'SELECT idx, leaf, leaf_hash FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx',
      ),
      lastEntry: db.prepare<[], { idx: number }>('SELECT idx FROM entries ORDER BY idx DESC LIMIT 1'),
      lastCheckpoint: db.prepare<[], { tree_size: number }>('SELECT tree_size FROM checkpoints ORDER BY tree_size DESC LIMIT 1'),
      checkpointIn: db.prepare<[number, number], { tree_size: number }>(
        'SELECT tree_size FROM checkpoints WHERE tree_size >= ? AND tree_size < ? ORDER BY tree_size LIMIT 1',
      ),
      byFile: db.prepare<[Buffer], { idx: number; leaf: Buffer }>('SELECT idx, leaf FROM entries WHERE file_hash = ?'),
      byLeafHash: db.prepare<[Buffer, number], { idx: number }>('SELECT idx FROM entries WHERE leaf_hash = ? AND idx < ? ORDER BY idx LIMIT 1'),
      byPackage: db.prepare<[string, string, number, number], { idx: number; leaf: Buffer }>(
        'SELECT idx, leaf FROM entries WHERE ecosystem = ? AND name = ? AND idx > ? ORDER BY idx LIMIT ?',
      ),
      byVersion: db.prepare<[string, string, string, number, number], { idx: number; leaf: Buffer }>(
        'SELECT idx, leaf FROM entries WHERE ecosystem = ? AND name = ? AND version = ? AND idx > ? ORDER BY idx LIMIT ?',
      ),
      bySha256: db.prepare<[Buffer, number, number], { idx: number; leaf: Buffer }>(
        'SELECT idx, leaf FROM entries WHERE sha256 = ? AND idx > ? ORDER BY idx LIMIT ?',
      ),
      checkpoint: db.prepare<[number], { note: string }>('SELECT note FROM checkpoints WHERE tree_size = ?'),
      insertCosignature: db.prepare('INSERT OR IGNORE INTO cosignatures (tree_size, key_name, key_id, line) VALUES (?, ?, ?, ?)'),
      cosignatures: db.prepare<[number], { line: string }>('SELECT line FROM cosignatures WHERE tree_size = ? ORDER BY key_name, key_id'),
      latestCosigned: db.prepare<[], { tree_size: number }>('SELECT tree_size FROM cosignatures ORDER BY tree_size DESC LIMIT 1'),
      cosignedSizes: db.prepare<[number], { tree_size: number; n: number }>(
        'SELECT tree_size, count(*) AS n FROM cosignatures WHERE tree_size >= ? GROUP BY tree_size ORDER BY tree_size DESC LIMIT 64',
      ),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
      raiseMeta: db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value ' +
          "WHERE NOT (meta.value GLOB '[0-9]*' AND meta.value NOT GLOB '*[^0-9]*' AND length(meta.value) <= 16) OR CAST(meta.value AS INTEGER) < ?",
      ),
    };
  }

  /**
   * Opens (creating it if needed, unless `mustExist`) the store at `path`: WAL, synchronous=FULL. The database is not
   * locked against other processes (readers such as `pkglog backup` and `pkglog fsck` share it); the log's
   * single-process lock is a separate file (log-store/lock.ts).
   */
  static open(path: string, options: { mustExist?: boolean; readonly?: boolean; /** skip the schema version check (fsck reports it) */ anyVersion?: boolean } = {}): LogStore {
    if ((options.mustExist || options.readonly) && !existsSync(path)) fail('not_found', `${path} does not exist`);
    const db = new Database(path, { readonly: options.readonly === true, fileMustExist: options.mustExist === true || options.readonly === true });
    const identity = fileIdentity(path);
    if (identity === undefined) {
      db.close();
      fail('internal', `${path} vanished while it was being opened`);
    }
    db.pragma('busy_timeout = 5000');
    try {
      if (!options.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.pragma('foreign_keys = ON');
        if (options.anyVersion !== true) migrateSqlite(db);
      }
      const v = sqliteSchemaVersion(db);
      if (v !== LATEST_SQLITE_VERSION && !options.anyVersion) fail('internal', `unsupported store schema version ${v}`);
      return new LogStore(db, path, identity);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** True while `path` still names the file this store opened (not deleted, not replaced by another file). */
  sameFile(): boolean {
    const now = fileIdentity(this.path);
    return now !== undefined && now.dev === this.identity.dev && now.ino === this.identity.ino;
  }

  /** An online, consistent copy of the database into `out` (SQLite's backup API; the log may keep writing). */
  async backup(out: string): Promise<void> {
    await this.db.backup(out);
  }

  close(): void {
    this.db.close();
  }

  /** The connection is open (readiness: after close, or a failed open, it is not). */
  get isOpen(): boolean {
    return this.db.open;
  }

  getMeta(key: string): string | undefined {
    return this.stmts.getMeta.get(key)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta.run(key, value);
  }

  /** Store's raiseMeta: `key` becomes the decimal `value` unless it already holds a number ≥ `value`. */
  raiseMeta(key: string, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) fail('internal', `raiseMeta(${key}): ${value} is not a size`);
    this.stmts.raiseMeta.run(key, String(value), value);
  }

  /** The current tree, or undefined before initialize(). */
  treeState(): TreeState | undefined {
    const r = this.stmts.tree.get();
    return r && { treeSize: r.tree_size, rootHash: r.root_hash, checkpoint: r.checkpoint };
  }

  /** Records the empty tree's signed checkpoint (once). */
  initialize(empty: TreeState, createdAt: number): void {
    this.db.transaction(() => {
      if (this.stmts.tree.get() !== undefined) return;
      this.stmts.initTree.run(empty.treeSize, empty.rootHash, empty.checkpoint);
      this.stmts.insertCheckpoint.run(empty.treeSize, empty.rootHash, empty.checkpoint, createdAt);
    })();
  }

  /**
   * Appends a batch in one transaction: entries, changed tiles, the signed checkpoint, and the tree row by
   * compare-and-swap on oldSize. Throws 'inconsistent' (and writes nothing) if the tree moved meanwhile.
   */
  append(batch: AppendBatch): void {
    const s = this.stmts;
    this.db.transaction(() => {
      const { newState } = batch;
      const r = s.casTree.run(newState.treeSize, newState.rootHash, newState.checkpoint, batch.oldSize);
      if (r.changes !== 1) fail('inconsistent', `tree is no longer at size ${batch.oldSize}`);
      for (const e of batch.entries) {
        s.insertEntry.run(e.index, e.leaf, e.leafHash, e.fileHash, e.ecosystem, e.name, e.version, e.sha256, e.integratedTime);
      }
      for (const { tile, data, inner } of batch.tiles) {
        s.upsertTile.run(tileId(tile.level, tile.index), tile.level, tile.index, tile.width, data, inner ?? null);
      }
      s.insertCheckpoint.run(newState.treeSize, newState.rootHash, newState.checkpoint, batch.createdAt);
    })();
  }

  /** The stored hash tile (its widest contents), or undefined. */
  tile(level: number, index: number): { width: number; data: Buffer } | undefined {
    return this.stmts.tile.get(tileId(level, index));
  }

  /** The stored hash tile with, when it is full, its inner levels 1…7 (254 hashes). */
  tileWithInner(level: number, index: number): { width: number; data: Buffer; inner?: Buffer } | undefined {
    const t = this.stmts.tileWithInner.get(tileId(level, index));
    if (t === undefined) return undefined;
    return t.inner === null ? { width: t.width, data: t.data } : { width: t.width, data: t.data, inner: t.inner };
  }

  /** The tile at exactly `tile.width` (a prefix of the stored one), or undefined if not that wide yet. */
  readTile(tile: Tile): Buffer | undefined {
    const t = this.stmts.tile.get(tileId(tile.level, tile.index));
    if (t === undefined || t.width < tile.width) return undefined;
    return t.width === tile.width ? t.data : t.data.subarray(0, tile.width * 32);
  }

  /** Rows [start, end) with their stored leaf hashes (callers bound the range to ≤ 256). */
  entryRows(start: number, end: number): Array<{ index: number; leaf: Buffer; leafHash: Buffer }> {
    return this.stmts.entryRows.all(start, end).map((r) => ({ index: r.idx, leaf: r.leaf, leafHash: r.leaf_hash }));
  }

  /** The largest entry index stored, or -1. */
  lastEntryIndex(): number {
    return this.stmts.lastEntry.get()?.idx ?? -1;
  }

  /** The largest checkpoint size stored, or -1. */
  lastCheckpointSize(): number {
    return this.stmts.lastCheckpoint.get()?.tree_size ?? -1;
  }

  /** The smallest size in [lo, hi) the log signed a checkpoint for, if any (one indexed read). */
  firstCheckpointSizeIn(lo: number, hi: number): number | undefined {
    return this.stmts.checkpointIn.get(lo, hi)?.tree_size;
  }

  entryLeaf(index: number): Buffer | undefined {
    return this.stmts.entry.get(index)?.leaf;
  }

  /** Leaves [start, end) in order (callers bound the range; an entry bundle is ≤ 256). */
  entryLeaves(start: number, end: number): Buffer[] {
    return this.stmts.entryRange.all(start, end);
  }

  findByFile(fileHash: Hash): EntryRef | undefined {
    const r = this.stmts.byFile.get(fileHash);
    return r && { index: r.idx, leaf: r.leaf };
  }

  /** The first index < treeSize whose leaf hash is `leafHash`. */
  findByLeafHash(leafHash: Hash, treeSize: number): number | undefined {
    return this.stmts.byLeafHash.get(leafHash, treeSize)?.idx;
  }

  /** Entries of a package (optionally one version), after index `after` (-1 for the start), at most `limit`. */
  lookupPackage(ecosystem: string, name: string, version: string | undefined, after: number, limit: number): EntryRef[] {
    const rows = version === undefined
      ? this.stmts.byPackage.all(ecosystem, name, after, limit)
      : this.stmts.byVersion.all(ecosystem, name, version, after, limit);
    return rows.map((r) => ({ index: r.idx, leaf: r.leaf }));
  }

  lookupSha256(sha256: Buffer, after: number, limit: number): EntryRef[] {
    return this.stmts.bySha256.all(sha256, after, limit).map((r) => ({ index: r.idx, leaf: r.leaf }));
  }

  /** The log-signed checkpoint of exactly this size, if the log ever signed one. */
  checkpoint(treeSize: number): string | undefined {
    return this.stmts.checkpoint.get(treeSize)?.note;
  }

  /** Stores verified cosignature lines (idempotent per witness key). */
  addCosignatures(treeSize: number, sigs: Array<{ keyName: string; keyId: Buffer; line: string }>): void {
    this.db.transaction(() => {
      for (const s of sigs) this.stmts.insertCosignature.run(treeSize, s.keyName, s.keyId, s.line);
    })();
  }

  cosignatureLines(treeSize: number): string[] {
    return this.stmts.cosignatures.all(treeSize).map((r) => r.line);
  }

  /** The newest checkpoint sizes (≥ minSize) that have cosignatures, with how many, newest first (at most 64). */
  cosignedSizes(minSize: number): Array<{ treeSize: number; count: number }> {
    return this.stmts.cosignedSizes.all(minSize).map((r) => ({ treeSize: r.tree_size, count: r.n }));
  }
}

/** The asynchronous Store over a LogStore (the same process, the same connection). */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly sync: LogStore;

  constructor(sync: LogStore) {
    this.sync = sync;
  }

  static open(path: string, options: { mustExist?: boolean } = {}): SqliteStore {
    return new SqliteStore(LogStore.open(path, options));
  }

  get location(): string {
    return this.sync.path;
  }

  get isOpen(): boolean {
    return this.sync.isOpen;
  }

  sameFile(): boolean {
    return this.sync.sameFile();
  }

  async close(): Promise<void> {
    this.sync.close();
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.sync.getMeta(key);
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.sync.setMeta(key, value);
  }

  async raiseMeta(key: string, value: number): Promise<void> {
    this.sync.raiseMeta(key, value);
  }

  async treeState(): Promise<TreeState | undefined> {
    return this.sync.treeState();
  }

  async initialize(empty: TreeState, createdAt: number): Promise<void> {
    this.sync.initialize(empty, createdAt);
  }

  async append(batch: AppendBatch, inTransaction?: AppendHook): Promise<void> {
    if (inTransaction !== undefined) fail('internal', 'a SQLite store has one sequencer and nothing to fence (several front ends need PostgreSQL)');
    this.sync.append(batch);
  }

  async tileWithInner(level: number, index: number): Promise<StoredTile | undefined> {
    return this.sync.tileWithInner(level, index);
  }

  async readTile(tile: Tile): Promise<Buffer | undefined> {
    return this.sync.readTile(tile);
  }

  async readTiles(tiles: Tile[]): Promise<Array<Buffer | undefined>> {
    return tiles.map((t) => this.sync.readTile(t));
  }

  async entryRows(start: number, end: number): Promise<Array<{ index: number; leaf: Buffer; leafHash: Buffer }>> {
    return this.sync.entryRows(start, end);
  }

  async lastEntryIndex(): Promise<number> {
    return this.sync.lastEntryIndex();
  }

  async lastCheckpointSize(): Promise<number> {
    return this.sync.lastCheckpointSize();
  }

  async firstCheckpointSizeIn(lo: number, hi: number): Promise<number | undefined> {
    return this.sync.firstCheckpointSizeIn(lo, hi);
  }

  async entryLeaf(index: number): Promise<Buffer | undefined> {
    return this.sync.entryLeaf(index);
  }

  async entryLeaves(start: number, end: number): Promise<Buffer[]> {
    return this.sync.entryLeaves(start, end);
  }

  async findByFile(fileHash: Hash): Promise<EntryRef | undefined> {
    return this.sync.findByFile(fileHash);
  }

  async findByFiles(fileHashes: Hash[]): Promise<Array<EntryRef | undefined>> {
    return fileHashes.map((h) => this.sync.findByFile(h));
  }

  async findByLeafHash(leafHash: Hash, treeSize: number): Promise<number | undefined> {
    return this.sync.findByLeafHash(leafHash, treeSize);
  }

  async lookupPackage(ecosystem: string, name: string, version: string | undefined, after: number, limit: number): Promise<EntryRef[]> {
    return this.sync.lookupPackage(ecosystem, name, version, after, limit);
  }

  async lookupSha256(sha256: Buffer, after: number, limit: number): Promise<EntryRef[]> {
    return this.sync.lookupSha256(sha256, after, limit);
  }

  async checkpoint(treeSize: number): Promise<string | undefined> {
    return this.sync.checkpoint(treeSize);
  }

  async addCosignatures(treeSize: number, sigs: Array<{ keyName: string; keyId: Buffer; line: string }>): Promise<void> {
    this.sync.addCosignatures(treeSize, sigs);
  }

  async cosignatureLines(treeSize: number): Promise<string[]> {
    return this.sync.cosignatureLines(treeSize);
  }

  async cosignedSizes(minSize: number): Promise<Array<{ treeSize: number; count: number }>> {
    return this.sync.cosignedSizes(minSize);
  }
}
