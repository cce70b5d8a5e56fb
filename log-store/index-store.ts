/**
 * The package index's persistence (docs/index-format.md, "Server: persistence"): the Merkle prefix trie's nodes, each
 * key's list (its IndexListState, its pages and the complete subtrees of its list tree), the revisions, and the
 * output log (hash tiles, signed checkpoints, cosignatures). One revision is written in ONE transaction that advances
 * the index head by compare-and-swap on the revision count, so the index is always at a revision boundary: after a
 * crash it resumes from the last committed revision, nothing is rebuilt at start-up, and writing the same revision
 * twice fails the CAS ('inconsistent') without changing anything.
 *
 * The interface is asynchronous (a PostgreSQL implementation can follow); the map update itself is core's synchronous
 * updateMap over the MapNodeReader that loadMapPaths returns (here: the database through a node cache; a remote store
 * would fetch the paths of the given keys first). SqliteIndexStore keeps its tables (prefix `index_`) in the log's own
 * database file on its own connection, so a backup of the log's database holds the index too.
 */
import Database from 'better-sqlite3';
import { fail } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';
import type { Tile } from '../core/tiles.ts';
import type { IntegratedTile } from '../core/integrate.ts';
import type { MapNodeReader, NewMapNode } from '../core/mpt.ts';
import { decodeIndexListState, type IndexListState } from '../core/index-list.ts';

/** Where the index is: `revisions` output-log leaves, the map of input entries [0, inputSize). */
export interface IndexHead {
  /** The output log's size: revisions 0 … revisions − 1 exist. */
  revisions: number;
  inputSize: number;
  mapRoot: Hash;
  /** The output log's root hash at `revisions`. */
  outputRoot: Hash;
}

export interface StoredRevision {
  revision: number;
  inputSize: number;
  mapRoot: Hash;
  /** The revision leaf (core/index-revision.ts). */
  leaf: Buffer;
}

/** A list page as stored: its first index (to find a revision's last page) and its indices, 8 bytes big-endian each. */
export interface StoredPage {
  key: Hash;
  page: number;
  first: number;
  indices: Buffer;
}

/** A complete subtree of a key's list tree over its full pages (level 0: a full page's leaf hash). */
export interface ListNode {
  key: Hash;
  level: number;
  index: number;
  hash: Hash;
}

/** Everything one revision writes. */
export interface IndexRevisionWrite {
  /** Compare-and-swap: the head's revision count before this write. */
  oldRevisions: number;
  head: IndexHead;
  revision: StoredRevision;
  /** The map nodes the update created. */
  nodes: NewMapNode[];
  /** The old map nodes this revision's update replaced (deleted once the revision expires, see expire). */
  replaced: Hash[];
  /** Nodes to delete now (replaced by the revision that expires with this write), and that revision. */
  expire?: { revision: number; nodes: Hash[] };
  /** New list states of the keys this revision touched (encodeIndexListState). */
  lists: Array<{ key: Hash; state: Buffer }>;
  pages: StoredPage[];
  listNodes: ListNode[];
  /** Changed output-log hash tiles (core/integrate.ts) and the signed checkpoint of the new output size. */
  tiles: IntegratedTile[];
  checkpoint: { treeSize: number; note: string };
}

export interface IndexStore {
  head(): Promise<IndexHead | undefined>;
  /** A reader of the map nodes on the paths of `keys` in the map with root `root` (and the update's neighbours). */
  loadMapPaths(root: Hash, keys: Hash[]): Promise<MapNodeReader>;
  /** The stored list states of `keys` (latin1 key → state); absent keys are not in the map. */
  listStates(keys: Hash[]): Promise<Map<string, IndexListState>>;
  /** The key's last page whose first index is below `inputSize` (the revision's last page), if any. */
  lastPageBefore(key: Hash, inputSize: number): Promise<StoredPage | undefined>;
  page(key: Hash, page: number): Promise<StoredPage | undefined>;
  listNodes(key: Hash, nodes: Array<{ level: number; index: number }>): Promise<Hash[]>;
  revision(revision: number): Promise<StoredRevision | undefined>;
  /** Revision leaves [start, end) (callers bound the range to ≤ 256: an output-log entry bundle). */
  revisionLeaves(start: number, end: number): Promise<Buffer[]>;
  /** The map nodes revision `revision` replaced (what its expiry deletes). */
  replacedBy(revision: number): Promise<Hash[]>;
  /** Output-log hash tiles at least `tile.width` wide, as readTile wants them (exactly width·32 bytes). */
  readTiles(tiles: Tile[]): Promise<Map<string, Buffer>>;
  /** The output log's checkpoint (log signature only) of exactly this size. */
  checkpoint(treeSize: number): Promise<string | undefined>;
  addCosignatures(treeSize: number, lines: Array<{ keyName: string; keyId: Buffer; line: string }>): Promise<void>;
  cosignatureLines(treeSize: number): Promise<string[]>;
  /** The newest output sizes ≥ minSize with at least `min` cosignatures (newest first, at most 64). */
  cosignedSizes(minSize: number): Promise<Array<{ treeSize: number; count: number }>>;
  /** Commits one revision (CAS on oldRevisions; 'inconsistent' and nothing written if the head moved). */
  commit(w: IndexRevisionWrite): Promise<void>;
  close(): Promise<void>;
}

export const INDEX_SCHEMA = `
CREATE TABLE IF NOT EXISTS index_head (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  revisions   INTEGER NOT NULL,
  input_size  INTEGER NOT NULL,
  map_root    BLOB NOT NULL,
  output_root BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS index_map_nodes (
  hash BLOB PRIMARY KEY,
  node BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_lists (
  key   BLOB PRIMARY KEY,
  state BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_pages (
  key     BLOB NOT NULL,
  page    INTEGER NOT NULL,
  first   INTEGER NOT NULL,
  indices BLOB NOT NULL CHECK (length(indices) BETWEEN 8 AND 512),
  PRIMARY KEY (key, page)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_list_nodes (
  key   BLOB NOT NULL,
  level INTEGER NOT NULL,
  idx   INTEGER NOT NULL,
  hash  BLOB NOT NULL,
  PRIMARY KEY (key, level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_revisions (
  revision   INTEGER PRIMARY KEY,
  input_size INTEGER NOT NULL,
  map_root   BLOB NOT NULL,
  leaf       BLOB NOT NULL,
  replaced   BLOB
);
CREATE TABLE IF NOT EXISTS index_tiles (
  id    INTEGER PRIMARY KEY,
  width INTEGER NOT NULL CHECK (width BETWEEN 1 AND 256),
  data  BLOB NOT NULL CHECK (length(data) = width * 32)
);
CREATE TABLE IF NOT EXISTS index_checkpoints (
  tree_size INTEGER PRIMARY KEY,
  note      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS index_cosignatures (
  tree_size INTEGER NOT NULL REFERENCES index_checkpoints (tree_size),
  key_name  TEXT NOT NULL,
  key_id    BLOB NOT NULL,
  line      TEXT NOT NULL,
  PRIMARY KEY (tree_size, key_name, key_id)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS index_checkpoints_no_update BEFORE UPDATE ON index_checkpoints
  BEGIN SELECT RAISE(ABORT, 'published index checkpoints are immutable'); END;
CREATE TRIGGER IF NOT EXISTS index_tiles_only_grow BEFORE UPDATE ON index_tiles
  WHEN OLD.width = 256 OR NEW.width <= OLD.width OR substr(NEW.data, 1, length(OLD.data)) != OLD.data
  BEGIN SELECT RAISE(ABORT, 'index hash tiles only grow'); END;
CREATE TRIGGER IF NOT EXISTS index_head_only_grows BEFORE UPDATE ON index_head
  WHEN NEW.revisions < OLD.revisions OR NEW.input_size < OLD.input_size
  BEGIN SELECT RAISE(ABORT, 'the index never shrinks'); END;
`;

/** Rows per multi-row statement. */
const CHUNK = 64;
const tileKey = (level: number, index: number) => level * 2 ** 46 + index;
const hashesOf = (b: Buffer | null): Hash[] => {
  const out: Hash[] = [];
  if (b === null) return out;
  for (let o = 0; o + 32 <= b.length; o += 32) out.push(b.subarray(o, o + 32));
  return out;
};

/** Map nodes are content-addressed and never change: a bounded cache in front of the table is always right. */
class NodeCache {
  private readonly m = new Map<string, Uint8Array>();
  constructor(private readonly max: number) {}
  get(k: string): Uint8Array | undefined {
    return this.m.get(k);
  }
  set(k: string, v: Uint8Array): void {
    if (this.m.size >= this.max) {
      // Drop the oldest eighth at once (insertion order): cheap, and the upper levels are re-read at once.
      let n = this.max >> 3;
      for (const key of this.m.keys()) {
        this.m.delete(key);
        if (--n <= 0) break;
      }
    }
    this.m.set(k, v);
  }
  delete(k: string): void {
    this.m.delete(k);
  }
}

export interface SqliteIndexStoreOptions {
  /** Map nodes kept in memory (default 200,000: about 30 MB). */
  nodeCache?: number;
  /** SQLite page cache of this connection in MiB (default 128): the map's rows are keyed by hash, so random. */
  pageCacheMiB?: number;
}

export class SqliteIndexStore implements IndexStore, MapNodeReader {
  readonly db: Database.Database;
  private readonly cache: NodeCache;
  private readonly s;

  private constructor(db: Database.Database, options: SqliteIndexStoreOptions) {
    this.db = db;
    this.cache = new NodeCache(options.nodeCache ?? 200_000);
    this.s = {
      head: db.prepare<[], { revisions: number; input_size: number; map_root: Buffer; output_root: Buffer }>('SELECT revisions, input_size, map_root, output_root FROM index_head WHERE id = 1'),
      initHead: db.prepare('INSERT INTO index_head (id, revisions, input_size, map_root, output_root) VALUES (1, ?, ?, ?, ?)'),
      casHead: db.prepare('UPDATE index_head SET revisions = ?, input_size = ?, map_root = ?, output_root = ? WHERE id = 1 AND revisions = ?'),
      node: db.prepare<[Buffer], { node: Buffer }>('SELECT node FROM index_map_nodes WHERE hash = ?'),
      putNode: db.prepare('INSERT OR IGNORE INTO index_map_nodes (hash, node) VALUES (?, ?)'),
      putNodes: db.prepare(`INSERT OR IGNORE INTO index_map_nodes (hash, node) VALUES ${Array(CHUNK).fill('(?, ?)').join(', ')}`),
      deleteNode: db.prepare('DELETE FROM index_map_nodes WHERE hash = ?'),
      deleteNodes: db.prepare(`DELETE FROM index_map_nodes WHERE hash IN (${Array(CHUNK).fill('?').join(', ')})`),
      list: db.prepare<[Buffer], { state: Buffer }>('SELECT state FROM index_lists WHERE key = ?'),
      putList: db.prepare('INSERT INTO index_lists (key, state) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state'),
      lastPageBefore: db.prepare<[Buffer, number], { page: number; first: number; indices: Buffer }>(
        'SELECT page, first, indices FROM index_pages WHERE key = ? AND first < ? ORDER BY page DESC LIMIT 1',
      ),
      page: db.prepare<[Buffer, number], { page: number; first: number; indices: Buffer }>('SELECT page, first, indices FROM index_pages WHERE key = ? AND page = ?'),
      putPage: db.prepare('INSERT INTO index_pages (key, page, first, indices) VALUES (?, ?, ?, ?) ON CONFLICT (key, page) DO UPDATE SET indices = excluded.indices'),
      listNode: db.prepare<[Buffer, number, number], { hash: Buffer }>('SELECT hash FROM index_list_nodes WHERE key = ? AND level = ? AND idx = ?'),
      putListNode: db.prepare('INSERT OR IGNORE INTO index_list_nodes (key, level, idx, hash) VALUES (?, ?, ?, ?)'),
      revision: db.prepare<[number], { revision: number; input_size: number; map_root: Buffer; leaf: Buffer }>('SELECT revision, input_size, map_root, leaf FROM index_revisions WHERE revision = ?'),
      revisionLeaves: db.prepare<[number, number], { leaf: Buffer }>('SELECT leaf FROM index_revisions WHERE revision >= ? AND revision < ? ORDER BY revision'),
      replaced: db.prepare<[number], { replaced: Buffer | null }>('SELECT replaced FROM index_revisions WHERE revision = ?'),
      putRevision: db.prepare('INSERT INTO index_revisions (revision, input_size, map_root, leaf, replaced) VALUES (?, ?, ?, ?, ?)'),
      clearReplaced: db.prepare('UPDATE index_revisions SET replaced = NULL WHERE revision = ?'),
      tile: db.prepare<[number], { width: number; data: Buffer }>('SELECT width, data FROM index_tiles WHERE id = ?'),
      upsertTile: db.prepare('INSERT INTO index_tiles (id, width, data) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET width = excluded.width, data = excluded.data'),
      checkpoint: db.prepare<[number], { note: string }>('SELECT note FROM index_checkpoints WHERE tree_size = ?'),
      putCheckpoint: db.prepare('INSERT INTO index_checkpoints (tree_size, note) VALUES (?, ?)'),
      addCosignature: db.prepare('INSERT OR IGNORE INTO index_cosignatures (tree_size, key_name, key_id, line) VALUES (?, ?, ?, ?)'),
      cosignatures: db.prepare<[number], { line: string }>('SELECT line FROM index_cosignatures WHERE tree_size = ? ORDER BY key_name, key_id'),
      cosignedSizes: db.prepare<[number], { tree_size: number; n: number }>(
        'SELECT tree_size, count(*) AS n FROM index_cosignatures WHERE tree_size >= ? GROUP BY tree_size ORDER BY tree_size DESC LIMIT 64',
      ),
    };
  }

  /** Opens the index tables in the database file at `path` (the log's log.sqlite), creating them if needed. */
  static open(path: string, options: SqliteIndexStoreOptions = {}): SqliteIndexStore {
    const db = new Database(path);
    try {
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma(`cache_size = -${1024 * (options.pageCacheMiB ?? 128)}`);
      db.exec(INDEX_SCHEMA);
    } catch (e) {
      db.close();
      throw e;
    }
    return new SqliteIndexStore(db, options);
  }

  // MapNodeReader: synchronous reads through the cache (better-sqlite3 is synchronous).
  getMapNode(hash: Hash): Uint8Array | undefined {
    const k = hash.toString('latin1');
    let n = this.cache.get(k);
    if (n === undefined) {
      n = this.s.node.get(hash)?.node;
      if (n !== undefined) this.cache.set(k, n);
    }
    return n;
  }

  async head(): Promise<IndexHead | undefined> {
    const r = this.s.head.get();
    return r && { revisions: r.revisions, inputSize: r.input_size, mapRoot: r.map_root, outputRoot: r.output_root };
  }

  async loadMapPaths(): Promise<MapNodeReader> {
    return this;
  }

  async listStates(keys: Hash[]): Promise<Map<string, IndexListState>> {
    const out = new Map<string, IndexListState>();
    for (const key of keys) {
      const r = this.s.list.get(key);
      if (r !== undefined) out.set(key.toString('latin1'), decodeIndexListState(r.state));
    }
    return out;
  }

  async lastPageBefore(key: Hash, inputSize: number): Promise<StoredPage | undefined> {
    const r = this.s.lastPageBefore.get(key, inputSize);
    return r && { key, page: r.page, first: r.first, indices: r.indices };
  }

  async page(key: Hash, page: number): Promise<StoredPage | undefined> {
    const r = this.s.page.get(key, page);
    return r && { key, page: r.page, first: r.first, indices: r.indices };
  }

  async listNodes(key: Hash, nodes: Array<{ level: number; index: number }>): Promise<Hash[]> {
    return nodes.map((n) => {
      const r = this.s.listNode.get(key, n.level, n.index);
      if (r === undefined) fail('internal', `index list node ${n.level}/${n.index} of key ${key.toString('hex')} is missing`);
      return r.hash;
    });
  }

  async revision(revision: number): Promise<StoredRevision | undefined> {
    const r = this.s.revision.get(revision);
    return r && { revision: r.revision, inputSize: r.input_size, mapRoot: r.map_root, leaf: r.leaf };
  }

  async revisionLeaves(start: number, end: number): Promise<Buffer[]> {
    return this.s.revisionLeaves.all(start, end).map((r) => r.leaf);
  }

  async replacedBy(revision: number): Promise<Hash[]> {
    return hashesOf(this.s.replaced.get(revision)?.replaced ?? null);
  }

  async readTiles(tiles: Tile[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const t of tiles) {
      const r = this.s.tile.get(tileKey(t.level, t.index));
      if (r === undefined || r.width < t.width) fail('internal', `index tile ${t.level}/${t.index} of width ${t.width} is missing`);
      out.set(`${t.level}/${t.index}`, r.width === t.width ? r.data : r.data.subarray(0, t.width * 32));
    }
    return out;
  }

  async checkpoint(treeSize: number): Promise<string | undefined> {
    return this.s.checkpoint.get(treeSize)?.note;
  }

  async addCosignatures(treeSize: number, lines: Array<{ keyName: string; keyId: Buffer; line: string }>): Promise<void> {
    this.db.transaction(() => {
      for (const l of lines) this.s.addCosignature.run(treeSize, l.keyName, l.keyId, l.line);
    })();
  }

  async cosignatureLines(treeSize: number): Promise<string[]> {
    return this.s.cosignatures.all(treeSize).map((r) => r.line);
  }

  async cosignedSizes(minSize: number): Promise<Array<{ treeSize: number; count: number }>> {
    return this.s.cosignedSizes.all(minSize).map((r) => ({ treeSize: r.tree_size, count: r.n }));
  }

  async commit(w: IndexRevisionWrite): Promise<void> {
    const s = this.s;
    this.db.transaction(() => {
      const h = w.head;
      if (w.oldRevisions === 0 && s.head.get() === undefined) {
        s.initHead.run(h.revisions, h.inputSize, h.mapRoot, h.outputRoot);
      } else if (s.casHead.run(h.revisions, h.inputSize, h.mapRoot, h.outputRoot, w.oldRevisions).changes !== 1) {
        fail('inconsistent', `the index is no longer at revision count ${w.oldRevisions}`);
      }
      // Many rows per statement: the statement overhead, not the B-tree, dominates single-row inserts.
      const nodes = w.nodes;
      let i = 0;
      for (; i + CHUNK <= nodes.length; i += CHUNK) s.putNodes.run(nodes.slice(i, i + CHUNK).flatMap((n) => [n.hash, n.node]));
      for (; i < nodes.length; i++) s.putNode.run(nodes[i]!.hash, nodes[i]!.node);
      if (w.expire !== undefined) {
        const gone = w.expire.nodes;
        let j = 0;
        for (; j + CHUNK <= gone.length; j += CHUNK) s.deleteNodes.run(gone.slice(j, j + CHUNK));
        for (; j < gone.length; j++) s.deleteNode.run(gone[j]!);
        s.clearReplaced.run(w.expire.revision);
      }
      for (const l of w.lists) s.putList.run(l.key, l.state);
      for (const p of w.pages) s.putPage.run(p.key, p.page, p.first, p.indices);
      for (const n of w.listNodes) s.putListNode.run(n.key, n.level, n.index, n.hash);
      const r = w.revision;
      s.putRevision.run(r.revision, r.inputSize, r.mapRoot, r.leaf, w.replaced.length === 0 ? null : Buffer.concat(w.replaced));
      for (const t of w.tiles) s.upsertTile.run(tileKey(t.tile.level, t.tile.index), t.tile.width, t.data);
      s.putCheckpoint.run(w.checkpoint.treeSize, w.checkpoint.note);
    })();
    // Only after the commit: the cache learns the new nodes and forgets the deleted ones.
    for (const n of w.nodes) this.cache.set(n.hash.toString('latin1'), n.node);
    for (const hash of w.expire?.nodes ?? []) this.cache.delete(hash.toString('latin1'));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
