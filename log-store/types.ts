/**
 * The log's storage interface: ONE asynchronous Store, implemented by SQLite (log-store/store.ts, the embedded
 * default; synchronous better-sqlite3 inside, one transaction per batch) and PostgreSQL (log-store/postgres.ts).
 * Every method returns a Promise; nothing the log serves grows with its size (every read is one indexed lookup).
 */
import type { Hash } from '../core/types.ts';
import type { Tile } from '../core/tiles.ts';
import type { IntegratedTile } from '../core/integrate.ts';
import type { Queryable } from './pg-sequencing.ts';

export interface TreeState {
  treeSize: number;
  rootHash: Hash;
  /** The signed checkpoint note (log signature only) of this tree. */
  checkpoint: string;
}

/** One entry as stored: the leaf plus the columns that index it. */
export interface StoredEntry {
  index: number;
  leaf: Buffer;
  leafHash: Hash;
  fileHash: Hash;
  ecosystem: string;
  name: string;
  version: string;
  sha256: Buffer;
  integratedTime: number;
}

export interface AppendBatch {
  oldSize: number;
  entries: StoredEntry[];
  /** Changed hash tiles; a tile that became full may carry its inner levels (core/integrate.ts). */
  tiles: IntegratedTile[];
  newState: TreeState;
  createdAt: number;
}

/**
 * Work run inside a batch's append transaction on its connection, after the tree's compare-and-swap and before COMMIT
 * (PostgreSQL: the sequencer lease fence and the pending queue, log-store/pg-sequencing.ts); if it throws, nothing of
 * the batch is committed. SQLite refuses one: a SQLite log has one process and nothing to fence.
 */
export type AppendHook = (tx: Queryable) => Promise<void>;

export interface EntryRef {
  index: number;
  leaf: Buffer;
}

export interface StoredTile {
  width: number;
  data: Buffer;
  /** When the tile is full: its inner levels 1…7 (254 hashes). */
  inner?: Buffer;
}

export const MAX_PAGE = 100;

/** Which backend a Store is. */
export type StoreKind = 'sqlite' | 'postgres';

export interface Store {
  readonly kind: StoreKind;
  /** Where the data lives, for messages: the SQLite file's path, or the PostgreSQL URL without its password. */
  readonly location: string;
  /** The connection is open (readiness: after close, or a failed open, it is not). */
  readonly isOpen: boolean;
  /**
   * SQLite only: true while the path still names the file this store opened (not deleted, not replaced). Absent for
   * a server database (there is no file whose identity the log could check).
   */
  sameFile?(): boolean;
  close(): Promise<void>;

  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
  /**
   * Sets meta `key` to the decimal `value` unless it already holds a number ≥ `value` (atomically: of several writers
   * the largest value stays; a non-numeric value is replaced). A mark that only ever rises (`published_size`).
   */
  raiseMeta(key: string, value: number): Promise<void>;

  /** The current tree, or undefined before initialize(). */
  treeState(): Promise<TreeState | undefined>;
  /** Records the empty tree's signed checkpoint (once; a no-op when the tree row exists). */
  initialize(empty: TreeState, createdAt: number): Promise<void>;
  /**
   * Appends a batch in ONE transaction: entries, changed tiles, the signed checkpoint, and the tree row by
   * compare-and-swap on oldSize. Rejects with 'inconsistent' (and writes nothing) if the tree moved meanwhile.
   * Resolves only after the transaction committed.
   */
  append(batch: AppendBatch, inTransaction?: AppendHook): Promise<void>;

  /** The stored hash tile (its widest contents) with, when it is full, its inner levels. */
  tileWithInner(level: number, index: number): Promise<StoredTile | undefined>;
  /** The tile at exactly `tile.width` (a prefix of the stored one), or undefined if not that wide yet. */
  readTile(tile: Tile): Promise<Buffer | undefined>;
  /** readTile for several tiles in one round trip (the right edge an integration reads). */
  readTiles(tiles: Tile[]): Promise<Array<Buffer | undefined>>;

  /** Rows [start, end) with their stored leaf hashes (callers bound the range to ≤ 256). */
  entryRows(start: number, end: number): Promise<Array<{ index: number; leaf: Buffer; leafHash: Buffer }>>;
  /** The largest entry index stored, or -1. */
  lastEntryIndex(): Promise<number>;
  /** The largest checkpoint size stored, or -1. */
  lastCheckpointSize(): Promise<number>;
  /** The smallest size in [lo, hi) the log signed a checkpoint for, if any (one indexed read). */
  firstCheckpointSizeIn(lo: number, hi: number): Promise<number | undefined>;
  entryLeaf(index: number): Promise<Buffer | undefined>;
  /** Leaves [start, end) in order (callers bound the range; an entry bundle is ≤ 256). */
  entryLeaves(start: number, end: number): Promise<Buffer[]>;
  findByFile(fileHash: Hash): Promise<EntryRef | undefined>;
  /** findByFile for each hash (one round trip for a whole batch); the result is parallel to the input. */
  findByFiles(fileHashes: Hash[]): Promise<Array<EntryRef | undefined>>;
  /** The first index < treeSize whose leaf hash is `leafHash`. */
  findByLeafHash(leafHash: Hash, treeSize: number): Promise<number | undefined>;
  /** Entries of a package (optionally one version), after index `after` (-1 for the start), at most `limit`. */
  lookupPackage(ecosystem: string, name: string, version: string | undefined, after: number, limit: number): Promise<EntryRef[]>;
  lookupSha256(sha256: Buffer, after: number, limit: number): Promise<EntryRef[]>;

  /** The log-signed checkpoint of exactly this size, if the log ever signed one. */
  checkpoint(treeSize: number): Promise<string | undefined>;
  /** Stores verified cosignature lines (idempotent per witness key). */
  addCosignatures(treeSize: number, sigs: Array<{ keyName: string; keyId: Buffer; line: string }>): Promise<void>;
  cosignatureLines(treeSize: number): Promise<string[]>;
  /** The newest checkpoint sizes (≥ minSize) that have cosignatures, with how many, newest first (at most 64). */
  cosignedSizes(minSize: number): Promise<Array<{ treeSize: number; count: number }>>;
}
