/**
 * Upgrades a package index of the earlier layout — its tables inside the log's database (log.sqlite), map nodes keyed
 * by hash, list states in `index_lists` — to the current one: its own database (index.sqlite), nodes by id
 * (docs/index-format.md, "Persistence", "Upgrading"). Once, at the first start of the new version; O(keys) then, never
 * again. The map is rebuilt from the old head's leaves (each key's list state as its leaf's extra) and must give the
 * old head's map root byte for byte, or nothing is written. The output log (tiles, checkpoints, cosignatures),
 * the revisions, full pages and list-tree nodes are copied as they are; revisions older than the head lose their root
 * id (their paths were not converted: a cursor for one is `not_found`). One transaction in index.sqlite, then the old
 * tables are dropped from log.sqlite; a crash between the two is finished at the next start.
 */
import Database from 'better-sqlite3';
import { fail } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';
import { EMPTY_MAP, updateMap, type MapChange } from '../core/mpt-store.ts';
import { INDEX_PAGE_SIZE } from '../core/index-list.ts';
import { SqliteIndexStore } from './index-store.ts';

const OLD_TABLES = ['index_cosignatures', 'index_checkpoints', 'index_tiles', 'index_revisions', 'index_list_nodes', 'index_pages', 'index_lists', 'index_map_nodes', 'index_head'];
const OLD_LEAF = 65;
const OLD_INNER = 98;

/** Whether the log's database holds an index of the earlier layout. */
export function hasOldIndex(logDb: Database.Database): boolean {
  return logDb.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'index_lists'").get() !== undefined;
}

/**
 * Converts the earlier layout's index in `logPath` into `indexPath` (which must hold no revision), then drops the old
 * tables. Returns the revision count converted, or undefined when there was nothing to convert.
 */
export function upgradeOldIndex(logPath: string, indexPath: string, log: (m: string) => void = () => {}): number | undefined {
  const old = new Database(logPath, { fileMustExist: true });
  try {
    old.pragma('busy_timeout = 5000');
    if (!hasOldIndex(old)) return undefined;
    const store = SqliteIndexStore.open(indexPath);
    try {
      const converted = store.db.prepare('SELECT revisions FROM index_head WHERE id = 1').get() as { revisions: number } | undefined;
      if (converted === undefined) {
        const head = old.prepare('SELECT revisions, input_size, map_root, output_root FROM index_head WHERE id = 1').get() as
          { revisions: number; input_size: number; map_root: Buffer; output_root: Buffer } | undefined;
        if (head !== undefined) convert(old, store.db, head, log);
      }
      const n = (store.db.prepare('SELECT revisions FROM index_head WHERE id = 1').get() as { revisions: number } | undefined)?.revisions ?? 0;
      // Only now (index.sqlite committed, synchronous=FULL): the old tables go.
      old.transaction(() => {
        for (const t of OLD_TABLES) old.exec(`DROP TABLE IF EXISTS ${t}`);
      })();
      log(`index: upgraded the index of the earlier layout (${n} revisions) from ${logPath} to ${indexPath}`);
      return n;
    } finally {
      void store.close();
    }
  } finally {
    old.close();
  }
}

function convert(old: Database.Database, db: Database.Database, head: { revisions: number; input_size: number; map_root: Buffer; output_root: Buffer }, log: (m: string) => void): void {
  // The old head's leaves, in key order (a walk of the content-addressed trie), with each key's list state.
  const node = old.prepare('SELECT node FROM index_map_nodes WHERE hash = ?').pluck() as Database.Statement<[Buffer], Buffer>;
  const listState = old.prepare('SELECT state FROM index_lists WHERE key = ?').pluck() as Database.Statement<[Buffer], Buffer>;
  const changes: MapChange[] = [];
  if (head.revisions > 0 && !head.map_root.equals(EMPTY_MAP.hash)) {
    const stack: Hash[] = [head.map_root];
    while (stack.length > 0) {
      const h = stack.pop()!;
      const b = node.get(h);
      if (b === undefined) fail('internal', `index upgrade: map node ${h.toString('hex')} of the head is missing`);
      if (b.length === OLD_LEAF && b[0] === 0) {
        const key = b.subarray(1, 33);
        const state = listState.get(key);
        if (state === undefined) fail('internal', `index upgrade: key ${key.toString('hex')} has no list state`);
        changes.push({ key, value: b.subarray(33, 65), extra: state });
      } else if (b.length === OLD_INNER && b[0] === 1) {
        stack.push(b.subarray(34, 66), b.subarray(2, 34)); // right below left: left first
      } else fail('internal', `index upgrade: map node ${h.toString('hex')} is not of the earlier layout (${b.length} bytes)`);
    }
  }
  const update = updateMap({ getMapNode: () => undefined }, EMPTY_MAP, changes, 1);
  if (!update.root.equals(head.map_root)) fail('internal', `index upgrade: the rebuilt map root ${update.root.toString('hex')} is not the stored ${head.map_root.toString('hex')}; nothing converted`);
  const nextNodeId = update.nodes.length + 1;
  log(`index: upgrading ${changes.length} keys (${update.nodes.length} map nodes) to index.sqlite`);
  const rows = <T>(sql: string) => old.prepare(sql).all() as T[];
  db.transaction(() => {
    const put = db.prepare('INSERT INTO index_map_nodes (id, node) VALUES (?, ?)');
    for (const n of update.nodes) put.run(n.id, n.node);
    const regions = new Map<number, number>();
    for (const n of update.nodes) regions.set(Math.floor(n.id / 2 ** 16), (regions.get(Math.floor(n.id / 2 ** 16)) ?? 0) + 1);
    const region = db.prepare('INSERT INTO index_regions (region, nodes, deletable) VALUES (?, ?, 0)');
    for (const [g, n] of regions) region.run(g, n);
    const rev = db.prepare('INSERT INTO index_revisions (revision, input_size, map_root, map_root_id, leaf) VALUES (?, ?, ?, ?, ?)');
    for (const r of rows<{ revision: number; input_size: number; map_root: Buffer; leaf: Buffer }>('SELECT revision, input_size, map_root, leaf FROM index_revisions ORDER BY revision')) {
      rev.run(r.revision, r.input_size, r.map_root, r.revision === head.revisions - 1 ? update.rootId : null, r.leaf);
    }
    const page = db.prepare('INSERT INTO index_pages (key, page, indices) VALUES (?, ?, ?)');
    for (const p of rows<{ key: Buffer; page: number; indices: Buffer }>('SELECT key, page, indices FROM index_pages')) {
      if (p.indices.length === 8 * INDEX_PAGE_SIZE) page.run(p.key, p.page, p.indices); // the partial last page is in the leaf now
    }
    const ln = db.prepare('INSERT INTO index_list_nodes (key, level, idx, hash) VALUES (?, ?, ?, ?)');
    for (const n of rows<{ key: Buffer; level: number; idx: number; hash: Buffer }>('SELECT key, level, idx, hash FROM index_list_nodes')) ln.run(n.key, n.level, n.idx, n.hash);
    const tile = db.prepare('INSERT INTO index_tiles (id, width, data) VALUES (?, ?, ?)');
    for (const t of rows<{ id: number; width: number; data: Buffer }>('SELECT id, width, data FROM index_tiles')) tile.run(t.id, t.width, t.data);
    const cp = db.prepare('INSERT INTO index_checkpoints (tree_size, note) VALUES (?, ?)');
    for (const c of rows<{ tree_size: number; note: string }>('SELECT tree_size, note FROM index_checkpoints')) cp.run(c.tree_size, c.note);
    const cs = db.prepare('INSERT INTO index_cosignatures (tree_size, key_name, key_id, line) VALUES (?, ?, ?, ?)');
    for (const c of rows<{ tree_size: number; key_name: string; key_id: Buffer; line: string }>('SELECT tree_size, key_name, key_id, line FROM index_cosignatures')) cs.run(c.tree_size, c.key_name, c.key_id, c.line);
    db.prepare('INSERT INTO index_head (id, revisions, input_size, map_root, map_root_id, output_root, next_node_id, deletable_upto) VALUES (1, ?, ?, ?, ?, ?, ?, ?)')
      .run(head.revisions, head.input_size, head.map_root, update.rootId, head.output_root, nextNodeId, head.revisions - 1);
  })();
}
