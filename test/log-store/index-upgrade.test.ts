/**
 * log-store/index-upgrade.ts: an index of the earlier layout (tables inside log.sqlite, nodes keyed by hash, list
 * states in index_lists; the schema below is that version's, verbatim) is converted at the first start with --index:
 * same head, same output log, bundles served at the converted revision, and the next revision extends it.
 * The old layout is written here from a real index (its head's trie re-encoded as content-addressed nodes).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { decodeMapNode, mapNodeHash } from '../../core/mpt-store.ts';
import { decodeIndexListState, encodeIndexPage } from '../../core/index-list.ts';
import { hasOldIndex } from '../../log-store/index-upgrade.ts';
import { indexDatabaseFile } from '../../server/index-service.ts';
import { databaseFile } from '../../server/main.ts';
import { startTestLog, removeDir } from '../support/log-harness.ts';
import { submitRange } from '../support/tiles-check.ts';

const OLD_SCHEMA = `
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


const submit = (url: string, from: number, n: number) => submitRange(url, from, n, { name: 'upgrade-test' });

/** Writes the index in index.sqlite into log.sqlite in the earlier layout (the head's trie only), then removes index.sqlite. */
function writeOldLayout(dataDir: string): void {
  const src = new Database(indexDatabaseFile(dataDir), { readonly: true });
  const dst = new Database(databaseFile(dataDir));
  try {
    dst.exec(OLD_SCHEMA);
    const head = src.prepare('SELECT * FROM index_head').get() as { revisions: number; input_size: number; map_root: Buffer; map_root_id: number; output_root: Buffer };
    dst.transaction(() => {
      dst.prepare('INSERT INTO index_head (id, revisions, input_size, map_root, output_root) VALUES (1, ?, ?, ?, ?)').run(head.revisions, head.input_size, head.map_root, head.output_root);
      const get = src.prepare('SELECT node FROM index_map_nodes WHERE id = ?').pluck();
      const stack = [head.map_root_id];
      while (stack.length > 0) {
        const b = get.get(stack.pop()!) as Buffer;
        const n = decodeMapNode(b);
        if (n.kind === 'leaf') {
          dst.prepare('INSERT INTO index_map_nodes (hash, node) VALUES (?, ?)').run(mapNodeHash(b), b.subarray(0, 65));
          const state = decodeIndexListState(n.extra);
          dst.prepare('INSERT INTO index_lists (key, state) VALUES (?, ?)').run(n.key, n.extra);
          if (state.tail.length > 0) dst.prepare('INSERT INTO index_pages (key, page, first, indices) VALUES (?, ?, ?, ?)').run(n.key, Math.floor(state.count / 64), state.tail[0], encodeIndexPage(state.tail));
        } else {
          dst.prepare('INSERT INTO index_map_nodes (hash, node) VALUES (?, ?)').run(mapNodeHash(b), b.subarray(0, 98));
          stack.push(n.leftId, n.rightId);
        }
      }
      for (const p of src.prepare('SELECT key, page, indices FROM index_pages').all() as Array<{ key: Buffer; page: number; indices: Buffer }>) {
        dst.prepare('INSERT INTO index_pages (key, page, first, indices) VALUES (?, ?, ?, ?)').run(p.key, p.page, Number(p.indices.readBigUInt64BE(0)), p.indices);
      }
      for (const r of src.prepare('SELECT * FROM index_list_nodes').all() as Array<Record<string, unknown>>) dst.prepare('INSERT INTO index_list_nodes (key, level, idx, hash) VALUES (?, ?, ?, ?)').run(r.key, r.level, r.idx, r.hash);
      for (const r of src.prepare('SELECT * FROM index_revisions').all() as Array<Record<string, unknown>>) dst.prepare('INSERT INTO index_revisions (revision, input_size, map_root, leaf) VALUES (?, ?, ?, ?)').run(r.revision, r.input_size, r.map_root, r.leaf);
      for (const r of src.prepare('SELECT * FROM index_tiles').all() as Array<Record<string, unknown>>) dst.prepare('INSERT INTO index_tiles (id, width, data) VALUES (?, ?, ?)').run(r.id, r.width, r.data);
      for (const r of src.prepare('SELECT * FROM index_checkpoints').all() as Array<Record<string, unknown>>) dst.prepare('INSERT INTO index_checkpoints (tree_size, note) VALUES (?, ?)').run(r.tree_size, r.note);
    })();
  } finally {
    src.close();
    dst.close();
  }
  for (const f of ['', '-wal', '-shm']) rmSync(indexDatabaseFile(dataDir) + f, { force: true });
}

describe('log-store/index-upgrade (an index of the earlier layout)', () => {
  it('is converted at the first start: same head and output log, bundles served, the next revision extends it', async () => {
    const first = await startTestLog({ index: true });
    const dataDir = first.dataDir;
    try {
      await submit(first.url, 0, 70); // two pages for the package key
      await submit(first.url, 70, 3);
      await first.index!.writer.caughtUp();
      const head = (await first.index!.indexer.currentHead())!;
      const bundle = await first.index!.indexer.bundle({ kind: 'package', ecosystem: 'pypi', name: 'upgrade-test' }, { revision: head.revisions - 1, page: 1 });
      const leaves = await first.index!.store.revisionLeaves(0, head.revisions);
      await first.close();
      first.server.close();
      writeOldLayout(dataDir);

      const second = await startTestLog({ dataDir, index: true });
      try {
        const db = new Database(databaseFile(dataDir), { readonly: true });
        try {
          assert.equal(hasOldIndex(db), false, 'the old tables are dropped');
        } finally {
          db.close();
        }
        const h = (await second.index!.indexer.currentHead())!;
        assert.deepEqual({ ...h, nextNodeId: 0 }, { ...head, mapRootId: h.mapRootId, nextNodeId: 0 }, 'the same head');
        assert.equal(await second.index!.indexer.bundle({ kind: 'package', ecosystem: 'pypi', name: 'upgrade-test' }, { revision: head.revisions - 1, page: 1 }), bundle, 'the same bundle, byte for byte');
        await submit(second.url, 73, 2);
        await second.index!.writer.caughtUp();
        const next = (await second.index!.indexer.currentHead())!;
        assert.equal(next.revisions, head.revisions + 1);
        assert.equal(next.inputSize, 75);
        assert.deepEqual((await second.index!.store.revisionLeaves(0, head.revisions)), leaves, 'the output log only grew');
        const b = JSON.parse(await second.index!.indexer.bundle({ kind: 'package', ecosystem: 'pypi', name: 'upgrade-test' }, { revision: next.revisions - 1, page: 1 })) as { entries: unknown[] };
        assert.equal(b.entries.length, 75 - 64);
      } finally {
        await second.close();
        second.server.close();
      }
    } finally {
      removeDir(dataDir);
    }
  });
});
