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
import type { MapNodeReader, MapRoot, NewMapNode } from '../core/mpt-store.ts';

/** Where the index is: `revisions` output-log leaves, the map of input entries [0, inputSize). */
export interface IndexHead {
  /** The output log's size: revisions 0 … revisions − 1 exist. */
  revisions: number;
  inputSize: number;
  mapRoot: Hash;
  /** The map root's node id (0: the empty map). */
  mapRootId: number;
  /** The output log's root hash at `revisions`. */
  outputRoot: Hash;
  /** The id the next revision's first new map node gets (ids only grow, never reused). */
  nextNodeId: number;
}

export interface StoredRevision {
  revision: number;
  inputSize: number;
  mapRoot: Hash;
  /** The map root's node id; undefined when the revision's nodes are no longer kept. */
  mapRootId: number | undefined;
  /** The revision leaf (core/index-revision.ts). */
  leaf: Buffer;
}

/** A FULL list page (64 indices, 8 bytes big-endian each); a list's last, partial page is its map leaf's tail. */
export interface StoredPage {
  key: Hash;
  page: number;
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
  revision: StoredRevision & { mapRootId: number };
  /** The map nodes the update created (ids from the old head's nextNodeId on, increasing). */
  nodes: NewMapNode[];
  /** The ids of the old map nodes this revision's update replaced (deleted by sweep once the revision expires). */
  replaced: number[];
  /** Pages that became full, and the list-tree nodes they complete. */
  pages: StoredPage[];
  listNodes: ListNode[];
  /** Changed output-log hash tiles (core/integrate.ts) and the signed checkpoint of the new output size. */
  tiles: IntegratedTile[];
  checkpoint: { treeSize: number; note: string };
}

export interface IndexStore {
  head(): Promise<IndexHead | undefined>;
  /** A reader of the map nodes on the paths of `keys` in the map with root `root` (and the update's neighbours). */
  loadMapPaths(root: MapRoot, keys: Hash[]): Promise<MapNodeReader>;
  /** A full page of a key's list. */
  page(key: Hash, page: number): Promise<StoredPage | undefined>;
  listNodes(key: Hash, nodes: Array<{ level: number; index: number }>): Promise<Hash[]>;
  revision(revision: number): Promise<StoredRevision | undefined>;
  /** Revision leaves [start, end) (callers bound the range to ≤ 256: an output-log entry bundle). */
  revisionLeaves(start: number, end: number): Promise<Buffer[]>;
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
  /**
   * Deletes, in one bounded step, map nodes replaced by revisions ≤ `upToRevision` (no kept revision reaches them);
   * the revisions < `oldestKept` lose their root id. Returns how many nodes it deleted (0: nothing worth doing).
   */
  sweep(upToRevision: number, oldestKept: number): Promise<number>;
  close(): Promise<void>;
}

export const INDEX_SCHEMA = `
CREATE TABLE IF NOT EXISTS index_head (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  revisions    INTEGER NOT NULL,
  input_size   INTEGER NOT NULL,
  map_root     BLOB NOT NULL,
  map_root_id  INTEGER NOT NULL,
  output_root  BLOB NOT NULL,
  next_node_id INTEGER NOT NULL,
  -- Dead ids of revisions ≤ this one are counted as deletable in index_regions (sweep).
  deletable_upto INTEGER NOT NULL DEFAULT 0
);
-- Map nodes by id, appended in id order (core/mpt.ts "Storage"); a leaf's extra is its key's IndexListState.
CREATE TABLE IF NOT EXISTS index_map_nodes (
  id   INTEGER PRIMARY KEY,
  node BLOB NOT NULL
);
-- Full pages only (64 indices); written once, when the page fills.
CREATE TABLE IF NOT EXISTS index_pages (
  key     BLOB NOT NULL,
  page    INTEGER NOT NULL,
  indices BLOB NOT NULL CHECK (length(indices) = 512),
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
  revision    INTEGER PRIMARY KEY,
  input_size  INTEGER NOT NULL,
  map_root    BLOB NOT NULL,
  map_root_id INTEGER,
  leaf        BLOB NOT NULL
);
-- The ids each revision's update replaced, per region of node ids (id >> region bits), sorted, 6 bytes each.
CREATE TABLE IF NOT EXISTS index_dead (
  region   INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  n        INTEGER NOT NULL,
  ids      BLOB NOT NULL,
  PRIMARY KEY (region, revision)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS index_dead_by_revision ON index_dead (revision);
-- Per region: nodes stored, and dead ids that no kept revision reaches (deletable) not yet deleted.
CREATE TABLE IF NOT EXISTS index_regions (
  region    INTEGER PRIMARY KEY,
  nodes     INTEGER NOT NULL,
  deletable INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS index_regions_by_deletable ON index_regions (deletable);
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
  WHEN NEW.revisions < OLD.revisions OR NEW.input_size < OLD.input_size OR NEW.next_node_id < OLD.next_node_id
  BEGIN SELECT RAISE(ABORT, 'the index never shrinks'); END;
`;

/** Rows per multi-row statement. */
const CHUNK = 64;
const ID_BYTES = 6;
const tileKey = (level: number, index: number) => level * 2 ** 46 + index;

/** Map nodes never change under their id (ids are never reused): a bounded cache in front of the table is always right. */
class NodeCache {
  private readonly m = new Map<number, Uint8Array>();
  constructor(private readonly max: number) {}
  get(k: number): Uint8Array | undefined {
    return this.m.get(k);
  }
  set(k: number, v: Uint8Array): void {
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
}

export interface SqliteIndexStoreOptions {
  /** Map nodes kept in memory (default 200,000: about 30 MB). */
  nodeCache?: number;
  /** SQLite page cache of this connection in MiB (default 64). */
  pageCacheMiB?: number;
  /** Node ids per region, as a power of two (default 16: 65,536 ids, about 8 MB of nodes). */
  regionBits?: number;
  /**
   * A region is swept once this fraction of its stored nodes is deletable (default 0.5; it is swept again as more of
   * what remains dies: SQLite merges a page once it is less than a third full, and the freed pages are reused by
   * later appends). 0 deletes every deletable node (tests).
   */
  sweepFraction?: number;
}

function encodeIds(ids: number[]): Buffer {
  const b = Buffer.allocUnsafe(ids.length * ID_BYTES);
  for (let i = 0; i < ids.length; i++) b.writeUIntBE(ids[i]!, i * ID_BYTES, ID_BYTES);
  return b;
}

export class SqliteIndexStore implements IndexStore, MapNodeReader {
  readonly db: Database.Database;
  private readonly cache: NodeCache;
  private readonly regionBits: number;
  private readonly sweepFraction: number;
  private readonly s;

  private constructor(db: Database.Database, options: SqliteIndexStoreOptions) {
    this.db = db;
    this.cache = new NodeCache(options.nodeCache ?? 200_000);
    this.regionBits = options.regionBits ?? 16;
    this.sweepFraction = options.sweepFraction ?? 0.5;
    this.s = {
      head: db.prepare<[], { revisions: number; input_size: number; map_root: Buffer; map_root_id: number; output_root: Buffer; next_node_id: number }>(
        'SELECT revisions, input_size, map_root, map_root_id, output_root, next_node_id FROM index_head WHERE id = 1',
      ),
      initHead: db.prepare('INSERT INTO index_head (id, revisions, input_size, map_root, map_root_id, output_root, next_node_id) VALUES (1, ?, ?, ?, ?, ?, ?)'),
      casHead: db.prepare('UPDATE index_head SET revisions = ?, input_size = ?, map_root = ?, map_root_id = ?, output_root = ?, next_node_id = ? WHERE id = 1 AND revisions = ?'),
      node: db.prepare<[number], Buffer>('SELECT node FROM index_map_nodes WHERE id = ?').pluck(),
      putNode: db.prepare('INSERT INTO index_map_nodes (id, node) VALUES (?, ?)'),
      putNodes: db.prepare(`INSERT INTO index_map_nodes (id, node) VALUES ${Array(CHUNK).fill('(?, ?)').join(', ')}`),
      deleteNode: db.prepare('DELETE FROM index_map_nodes WHERE id = ?'),
      page: db.prepare<[Buffer, number], { page: number; indices: Buffer }>('SELECT page, indices FROM index_pages WHERE key = ? AND page = ?'),
      putPage: db.prepare('INSERT INTO index_pages (key, page, indices) VALUES (?, ?, ?)'),
      listNode: db.prepare<[Buffer, number, number], { hash: Buffer }>('SELECT hash FROM index_list_nodes WHERE key = ? AND level = ? AND idx = ?'),
      putListNode: db.prepare('INSERT OR IGNORE INTO index_list_nodes (key, level, idx, hash) VALUES (?, ?, ?, ?)'),
      revision: db.prepare<[number], { revision: number; input_size: number; map_root: Buffer; map_root_id: number | null; leaf: Buffer }>(
        'SELECT revision, input_size, map_root, map_root_id, leaf FROM index_revisions WHERE revision = ?',
      ),
      revisionLeaves: db.prepare<[number, number], { leaf: Buffer }>('SELECT leaf FROM index_revisions WHERE revision >= ? AND revision < ? ORDER BY revision'),
      putRevision: db.prepare('INSERT INTO index_revisions (revision, input_size, map_root, map_root_id, leaf) VALUES (?, ?, ?, ?, ?)'),
      forgetRoot: db.prepare('UPDATE index_revisions SET map_root_id = NULL WHERE revision = ?'),
      putDead: db.prepare('INSERT INTO index_dead (region, revision, n, ids) VALUES (?, ?, ?, ?)'),
      regionAdd: db.prepare('INSERT INTO index_regions (region, nodes, deletable) VALUES (?, ?, 0) ON CONFLICT (region) DO UPDATE SET nodes = nodes + excluded.nodes'),
      deletableUpto: db.prepare<[], number>('SELECT deletable_upto FROM index_head WHERE id = 1').pluck(),
      setDeletableUpto: db.prepare('UPDATE index_head SET deletable_upto = ? WHERE id = 1'),
      deadIn: db.prepare<[number, number], { region: number; n: number }>('SELECT region, n FROM index_dead WHERE revision > ? AND revision <= ?'),
      regionDeletable: db.prepare('UPDATE index_regions SET deletable = deletable + ? WHERE region = ?'),
      candidate: db.prepare<[], { region: number; nodes: number; deletable: number }>(
        'SELECT region, nodes, deletable FROM index_regions WHERE deletable > 0 ORDER BY deletable DESC LIMIT 1',
      ),
      deadOf: db.prepare<[number, number], Buffer>('SELECT ids FROM index_dead WHERE region = ? AND revision <= ?').pluck(),
      dropDead: db.prepare('DELETE FROM index_dead WHERE region = ? AND revision <= ?'),
      regionSwept: db.prepare('UPDATE index_regions SET nodes = nodes - ?, deletable = deletable - ? WHERE region = ?'),
      dropRegion: db.prepare('DELETE FROM index_regions WHERE region = ? AND nodes = 0 AND deletable = 0'),
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
      db.pragma(`cache_size = -${1024 * (options.pageCacheMiB ?? 64)}`);
      db.exec(INDEX_SCHEMA);
    } catch (e) {
      db.close();
      throw e;
    }
    return new SqliteIndexStore(db, options);
  }

  /**
   * An online, consistent copy of the index database at `path` into `out` (SQLite's backup API), switched to
   * journal_mode=DELETE (one self-contained file) and checked: integrity_check and its head row. Returns its revision
   * count. The caller fsyncs and renames it into place.
   */
  static async backup(path: string, out: string): Promise<number> {
    const src = new Database(path, { readonly: true, fileMustExist: true });
    try {
      await src.backup(out);
    } finally {
      src.close();
    }
    const copy = new Database(out, { fileMustExist: true });
    try {
      copy.pragma('journal_mode = DELETE');
      const check = copy.pragma('integrity_check', { simple: true });
      if (check !== 'ok') fail('internal', `the index backup does not pass integrity_check: ${String(check)}`);
      const head = copy.prepare('SELECT revisions FROM index_head WHERE id = 1').get() as { revisions: number } | undefined;
      return head?.revisions ?? 0;
    } finally {
      copy.close();
    }
  }

  // MapNodeReader: synchronous reads through the cache (better-sqlite3 is synchronous).
  getMapNode(id: number): Uint8Array | undefined {
    let n = this.cache.get(id);
    if (n === undefined) {
      n = this.s.node.get(id);
      if (n !== undefined) this.cache.set(id, n);
    }
    return n;
  }

  async head(): Promise<IndexHead | undefined> {
    const r = this.s.head.get();
    return r && { revisions: r.revisions, inputSize: r.input_size, mapRoot: r.map_root, mapRootId: r.map_root_id, outputRoot: r.output_root, nextNodeId: r.next_node_id };
  }

  async loadMapPaths(): Promise<MapNodeReader> {
    return this;
  }

  async page(key: Hash, page: number): Promise<StoredPage | undefined> {
    const r = this.s.page.get(key, page);
    return r && { key, page: r.page, indices: r.indices };
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
    return r && { revision: r.revision, inputSize: r.input_size, mapRoot: r.map_root, mapRootId: r.map_root_id ?? undefined, leaf: r.leaf };
  }

  async revisionLeaves(start: number, end: number): Promise<Buffer[]> {
    return this.s.revisionLeaves.all(start, end).map((r) => r.leaf);
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
    const rb = this.regionBits;
    // Per region: nodes added, and the ids this revision replaced (sorted).
    const added = new Map<number, number>();
    for (const n of w.nodes) {
      const g = Math.floor(n.id / 2 ** rb);
      added.set(g, (added.get(g) ?? 0) + 1);
    }
    const dead = new Map<number, number[]>();
    for (const id of w.replaced) {
      const g = Math.floor(id / 2 ** rb);
      let l = dead.get(g);
      if (l === undefined) dead.set(g, (l = []));
      l.push(id);
    }
    this.db.transaction(() => {
      const h = w.head;
      const cur = s.head.get();
      if (w.oldRevisions === 0 && cur === undefined) {
        s.initHead.run(h.revisions, h.inputSize, h.mapRoot, h.mapRootId, h.outputRoot, h.nextNodeId);
      } else {
        // Fenced twice: the revision count, and the node ids (a writer holding stale ids never overwrites nodes).
        if (cur !== undefined && w.nodes.length > 0 && w.nodes[0]!.id < cur.next_node_id) fail('inconsistent', `map node ids from ${w.nodes[0]!.id} are already taken (next: ${cur.next_node_id})`);
        if (s.casHead.run(h.revisions, h.inputSize, h.mapRoot, h.mapRootId, h.outputRoot, h.nextNodeId, w.oldRevisions).changes !== 1) {
          fail('inconsistent', `the index is no longer at revision count ${w.oldRevisions}`);
        }
      }
      // Appended in id order: many rows per statement, at the table's right edge.
      const nodes = w.nodes;
      let i = 0;
      for (; i + CHUNK <= nodes.length; i += CHUNK) s.putNodes.run(nodes.slice(i, i + CHUNK).flatMap((n) => [n.id, n.node]));
      for (; i < nodes.length; i++) s.putNode.run(nodes[i]!.id, nodes[i]!.node);
      const regions = new Set([...added.keys(), ...dead.keys()]);
      for (const g of regions) {
        const d = dead.get(g);
        if (d !== undefined) {
          d.sort((a, b) => a - b);
          s.putDead.run(g, w.revision.revision, d.length, encodeIds(d));
        }
        s.regionAdd.run(g, added.get(g) ?? 0);
      }
      for (const p of w.pages) s.putPage.run(p.key, p.page, p.indices);
      for (const n of w.listNodes) s.putListNode.run(n.key, n.level, n.index, n.hash);
      const r = w.revision;
      s.putRevision.run(r.revision, r.inputSize, r.mapRoot, r.mapRootId, r.leaf);
      for (const t of w.tiles) s.upsertTile.run(tileKey(t.tile.level, t.tile.index), t.tile.width, t.data);
      s.putCheckpoint.run(w.checkpoint.treeSize, w.checkpoint.note);
    })();
    // Only after the commit: the cache learns the new nodes (the update reads them back at the next revision).
    for (const n of w.nodes) this.cache.set(n.id, n.node);
  }

  async sweep(upToRevision: number, oldestKept: number): Promise<number> {
    const s = this.s;
    return this.db.transaction(() => {
      // The revision that just left the kept window (one per revision: the older ones were forgotten before).
      if (oldestKept >= 1) s.forgetRoot.run(oldestKept - 1);
      const done = s.deletableUpto.get();
      if (done === undefined) return 0;
      // The dead ids of revisions (done, upToRevision] become deletable: counted per region.
      if (upToRevision > done) {
        for (const r of s.deadIn.all(done, upToRevision)) s.regionDeletable.run(r.n, r.region);
        s.setDeletableUpto.run(upToRevision);
      }
      const upto = Math.max(done, upToRevision);
      // One region per step: the one with the most deletable nodes (an indexed read), once they are the given
      // fraction of its nodes.
      const c = s.candidate.get();
      if (c === undefined || c.deletable < c.nodes * this.sweepFraction) return 0;
      const ids: number[] = [];
      for (const b of s.deadOf.all(c.region, upto)) for (let o = 0; o < b.length; o += ID_BYTES) ids.push(b.readUIntBE(o, ID_BYTES));
      ids.sort((a, b) => a - b);
      let deleted = 0;
      for (const id of ids) deleted += s.deleteNode.run(id).changes;
      s.dropDead.run(c.region, upto);
      s.regionSwept.run(deleted, ids.length, c.region);
      s.dropRegion.run(c.region);
      return deleted;
    })();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
