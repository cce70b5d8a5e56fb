/**
 * ONE store contract, run against both backends (SQLite in a temporary directory; PostgreSQL in a fresh database of
 * the test server, test/support/postgres.ts): append and compare-and-swap, a failed batch writes nothing, the database
 * itself refuses to rewrite history (triggers), tiles only widen, lookups and pagination, checkpoints, cosignatures,
 * meta, migrations idempotent. PostgreSQL only: concurrent appends from the same size (exactly one wins), the fence
 * runs inside the batch's transaction, BIGINT read back exactly.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EMPTY_ROOT, leafHash, sha256 } from '../../core/hash.ts';
import { integrate, rightEdgeTiles } from '../../core/integrate.ts';
import { isPkglogError } from '../../core/errors.ts';
import { SqliteStore, type Store, type StoredEntry } from '../../log-store/store.ts';
import { PostgresStore, parseBigint } from '../../log-store/postgres.ts';
import { LATEST_PG_VERSION, LATEST_SQLITE_VERSION, migratePostgresUrl, migrateSqliteFile } from '../../log-store/migrations.ts';
import { SCHEMA } from '../../log-store/schema.ts';
import { ReferenceTree } from '../support/reference-tree.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { createTestDatabase } from '../support/postgres.ts';

interface Backend {
  store: Store;
  /** Runs raw SQL on the backend's own connection (to try what the store never does). */
  raw(sql: string): Promise<unknown>;
  migrateAgain(): Promise<{ applied: unknown[]; to: number }>;
  latest: number;
  close(): Promise<void>;
}

const BACKENDS: Array<{ name: string; open(): Promise<Backend> }> = [
  {
    name: 'SQLite',
    async open() {
      const dir = tempDir();
      const path = join(dir, 'log.sqlite');
      const store = SqliteStore.open(path);
      return {
        store,
        raw: async (sql) => store.sync.db.exec(sql),
        migrateAgain: async () => migrateSqliteFile(path),
        latest: LATEST_SQLITE_VERSION,
        async close() {
          await store.close();
          removeDir(dir);
        },
      };
    },
  },
  {
    name: 'PostgreSQL',
    async open() {
      const db = await createTestDatabase();
      const store = await PostgresStore.open(db.url, { maxConnections: 4 });
      return {
        store,
        raw: (sql) => store.pool.query(sql),
        migrateAgain: () => migratePostgresUrl(db.url),
        latest: LATEST_PG_VERSION,
        async close() {
          await store.close();
          await db.drop();
        },
      };
    },
  },
];

function entry(index: number, o: Partial<StoredEntry> = {}): StoredEntry {
  const leaf = Buffer.from(`contract leaf ${index}`);
  return {
    index, leaf, leafHash: leafHash(leaf), fileHash: sha256(Buffer.from(`file ${index}`)), ecosystem: 'pypi',
    name: `p${index % 3}`, version: `v${index}`, sha256: sha256(Buffer.from(`artifact ${index % 5}`)), integratedTime: 1_700_000_000_000 + index,
    ...o,
  };
}

/** Appends n entries the way the sequencer does: right-edge tiles in one read, integrate, one append. */
async function appendN(store: Store, n: number, mutate?: (e: StoredEntry[]) => void): Promise<{ treeSize: number; rootHash: Buffer }> {
  const state = (await store.treeState())!;
  const entries = Array.from({ length: n }, (_, i) => entry(state.treeSize + i));
  mutate?.(entries);
  const edge = rightEdgeTiles(state.treeSize);
  const data = await store.readTiles(edge);
  const r = integrate(state.treeSize, (t) => data[edge.findIndex((e) => e.level === t.level && e.index === t.index)]!, entries.map((e) => e.leafHash));
  await store.append({ oldSize: state.treeSize, entries, tiles: r.tiles, newState: { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: `cp ${r.treeSize}\n` }, createdAt: 1 });
  return r;
}

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, re);
    return true;
  });
}

for (const backend of BACKENDS) {
  describe(`store contract: ${backend.name}`, function () {
    this.timeout(60_000);
    let b: Backend;
    let store: Store;
    beforeEach(async () => {
      b = await backend.open();
      store = b.store;
      await store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: 'cp 0\n' }, 0);
    });
    afterEach(async () => {
      await b.close();
    });

    it('initializes once, appends batches by compare-and-swap, and reads back what it stored', async () => {
      await store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: 'another cp 0\n' }, 5);
      assert.equal((await store.treeState())!.checkpoint, 'cp 0\n', 'initialize is a no-op the second time');
      const r1 = await appendN(store, 300);
      const r2 = await appendN(store, 7);
      const ref = ReferenceTree.fromEntries(Array.from({ length: 307 }, (_, i) => entry(i).leaf));
      const t = (await store.treeState())!;
      assert.equal(t.treeSize, 307);
      assert.ok(t.rootHash.equals(ref.root()) && r2.rootHash.equals(ref.root()));
      assert.ok(r1.rootHash.equals(ref.root(300)));
      assert.equal(await store.lastEntryIndex(), 306);
      assert.equal(await store.lastCheckpointSize(), 307);
      assert.equal(await store.checkpoint(300), 'cp 300\n');
      assert.equal(await store.checkpoint(301), undefined);
      assert.equal(await store.firstCheckpointSizeIn(1, 400), 300);
      assert.equal(await store.firstCheckpointSizeIn(301, 307), undefined);
      assert.ok((await store.entryLeaf(5))!.equals(entry(5).leaf));
      assert.equal(await store.entryLeaf(307), undefined);
      const leaves = await store.entryLeaves(256, 307);
      assert.equal(leaves.length, 51);
      assert.ok(leaves[0]!.equals(entry(256).leaf));
      assert.equal((await store.entryLeaves(0, 256)).length, 256);
      assert.deepEqual((await store.entryLeaves(0, 256)).map((l) => l.toString()), Array.from({ length: 256 }, (_, i) => entry(i).leaf.toString()), 'a full bundle, twice (cached)');
      const rows = await store.entryRows(300, 307);
      assert.deepEqual(rows.map((r) => r.index), [300, 301, 302, 303, 304, 305, 306]);
      assert.ok(rows[0]!.leafHash.equals(entry(300).leafHash));
      // tiles: the full one with its inner levels, the partial ones as prefixes
      const full = (await store.tileWithInner(0, 0))!;
      assert.equal(full.width, 256);
      assert.equal(full.inner!.length, 254 * 32);
      assert.ok(full.data.subarray(0, 32).equals(entry(0).leafHash));
      const edge = (await store.tileWithInner(0, 1))!;
      assert.equal(edge.width, 51);
      assert.equal(edge.inner, undefined);
      assert.ok((await store.readTile({ level: 0, index: 1, width: 44 }))!.equals(edge.data.subarray(0, 44 * 32)));
      assert.equal(await store.readTile({ level: 0, index: 1, width: 52 }), undefined, 'not that wide yet');
      assert.equal(await store.readTile({ level: 0, index: 2, width: 1 }), undefined);
      const many = await store.readTiles([{ level: 1, index: 0, width: 1 }, { level: 0, index: 9, width: 1 }, { level: 0, index: 0, width: 256 }]);
      assert.equal(many.length, 3);
      assert.equal(many[0]!.length, 32);
      assert.equal(many[1], undefined);
      assert.ok(many[2]!.equals(full.data));
      await rejectsWith(store.readTile({ level: 64, index: 0, width: 1 }), /outside any tree/);
    });

    it('refuses a batch from a stale size, and a batch that fails half way writes nothing', async () => {
      await appendN(store, 3);
      const before = (await store.treeState())!;
      const stale = { oldSize: 1, entries: [entry(3)], tiles: [], newState: { treeSize: 4, rootHash: Buffer.alloc(32, 1), checkpoint: 'cp 4 (stale)\n' }, createdAt: 2 };
      await assert.rejects(store.append(stale), (e: unknown) => isPkglogError(e, 'inconsistent') && /no longer at size 1/.test((e as Error).message));
      // A batch whose second entry repeats a file hash: the database refuses it, and nothing of it stays.
      await assert.rejects(appendN(store, 2, (es) => (es[1]!.fileHash = entry(0).fileHash)));
      const after = (await store.treeState())!;
      assert.equal(after.treeSize, before.treeSize);
      assert.ok(after.rootHash.equals(before.rootHash));
      assert.equal(await store.entryLeaf(3), undefined);
      assert.equal(await store.checkpoint(4), undefined);
      assert.equal(await store.checkpoint(5), undefined);
      assert.equal((await appendN(store, 2)).treeSize, 5, 'carries on from the stored state');
    });

    it('the database refuses to rewrite history: entries, checkpoints, cosignatures, the tree row; tiles only widen', async () => {
      await appendN(store, 260);
      await store.addCosignatures(260, [{ keyName: 'w.example', keyId: Buffer.from('abcd'), line: '— w.example q83v' }]);
      const refused: Array<[string, RegExp]> = [
        ["UPDATE entries SET leaf = leaf WHERE idx = 0", /entries are append-only/],
        ['DELETE FROM entries WHERE idx = 259', /entries are append-only/],
        ["UPDATE checkpoints SET note = 'x' WHERE tree_size = 260", /published checkpoints are immutable/],
        ['DELETE FROM checkpoints WHERE tree_size = 0', /published checkpoints are immutable/],
        ["UPDATE cosignatures SET line = 'x'", /cosignatures are immutable/],
        ['DELETE FROM cosignatures', /cosignatures are immutable/],
        ['DELETE FROM tiles WHERE level = 0', /hash tiles are append-only/],
        ['UPDATE tree SET tree_size = 1', /the tree never shrinks/],
      ];
      if (backend.name === 'PostgreSQL') {
        refused.push(['TRUNCATE entries CASCADE', /entries are append-only/], ['TRUNCATE tiles', /hash tiles are append-only/],
          ['TRUNCATE checkpoints CASCADE', /immutable/], ['DELETE FROM tree', /never deleted/]);
      }
      for (const [sql, re] of refused) await rejectsWith(b.raw(sql), re);
      assert.equal((await store.treeState())!.treeSize, 260);
      assert.equal((await store.entryRows(0, 300)).length, 260);
      // tiles: a full tile never changes; a partial one only widens, keeping its prefix
      const tile = (await store.tileWithInner(0, 1))!;
      assert.equal(tile.width, 4);
      const tiles = (width: number, data: Buffer) => [{ tile: { level: 0, index: 1, width }, data }];
      const grow = async (width: number, data: Buffer, oldSize: number) => store.append({
        oldSize, entries: [], tiles: tiles(width, data), newState: { treeSize: oldSize, rootHash: Buffer.alloc(32), checkpoint: `cp ${oldSize} again\n` }, createdAt: 3,
      });
      await rejectsWith(grow(3, tile.data.subarray(0, 96), 260), /hash tiles only grow/);
      await rejectsWith(grow(5, Buffer.concat([Buffer.alloc(32, 9), tile.data.subarray(32), Buffer.alloc(32)]), 260), /hash tiles only grow/);
      await rejectsWith(b.raw(`UPDATE tiles SET width = 255, data = substr(data, 1, 255 * 32) WHERE level = 0 AND idx = 0`.replace('substr(data, 1, 255 * 32)', backend.name === 'SQLite' ? 'substr(data, 1, 255 * 32)' : 'substring(data FROM 1 FOR 255 * 32)')), /hash tiles only grow/);
      assert.ok((await store.tileWithInner(0, 1))!.data.equals(tile.data), 'the refused writes changed nothing');
      assert.equal((await store.treeState())!.checkpoint, 'cp 260\n');
      // widening by extension is what integration does
      await appendN(store, 1);
      const wider = (await store.tileWithInner(0, 1))!;
      assert.equal(wider.width, 5);
      assert.ok(wider.data.subarray(0, 4 * 32).equals(tile.data));
    });

    it('looks entries up by file, leaf hash, package, version and sha256, with cursor pagination', async () => {
      await appendN(store, 40);
      assert.deepEqual((await store.findByFile(entry(7).fileHash))?.index, 7);
      assert.equal(await store.findByFile(sha256(Buffer.from('nope'))), undefined);
      const found = await store.findByFiles([entry(3).fileHash, sha256(Buffer.from('nope')), entry(39).fileHash, entry(3).fileHash]);
      assert.deepEqual(found.map((f) => f?.index), [3, undefined, 39, 3]);
      assert.ok(found[0]!.leaf.equals(entry(3).leaf));
      assert.deepEqual(await store.findByFiles([]), []);
      assert.equal(await store.findByLeafHash(entry(12).leafHash, 40), 12);
      assert.equal(await store.findByLeafHash(entry(12).leafHash, 12), undefined, 'only below the given size');
      // p1: indexes 1, 4, 7, …, 37 (13 entries): pages of 5
      const pages: number[][] = [];
      let after = -1;
      for (;;) {
        const page = await store.lookupPackage('pypi', 'p1', undefined, after, 5);
        pages.push(page.map((r) => r.index));
        if (page.length < 5) break;
        after = page[page.length - 1]!.index;
      }
      assert.deepEqual(pages, [[1, 4, 7, 10, 13], [16, 19, 22, 25, 28], [31, 34, 37]]);
      assert.deepEqual((await store.lookupPackage('pypi', 'p1', 'v13', -1, 100)).map((r) => r.index), [13]);
      assert.deepEqual(await store.lookupPackage('npm', 'p1', undefined, -1, 100), []);
      const bySha = await store.lookupSha256(sha256(Buffer.from('artifact 2')), 10, 3);
      assert.deepEqual(bySha.map((r) => r.index), [12, 17, 22]);
      assert.ok(bySha[0]!.leaf.equals(entry(12).leaf));
    });

    it('keeps cosignatures idempotently per witness key and lists the newest cosigned sizes', async () => {
      await appendN(store, 2);
      await appendN(store, 2);
      const sig = (name: string, id: number) => ({ keyName: name, keyId: Buffer.from([id, 0, 0, 1]), line: `— ${name} sig${id}` });
      await store.addCosignatures(2, [sig('b.example', 1), sig('a.example', 2)]);
      await store.addCosignatures(2, [sig('a.example', 2)]);
      await store.addCosignatures(4, [sig('a.example', 2)]);
      await store.addCosignatures(4, []);
      assert.deepEqual(await store.cosignatureLines(2), ['— a.example sig2', '— b.example sig1']);
      assert.deepEqual(await store.cosignedSizes(0), [{ treeSize: 4, count: 1 }, { treeSize: 2, count: 2 }]);
      assert.deepEqual(await store.cosignedSizes(3), [{ treeSize: 4, count: 1 }]);
      await assert.rejects(store.addCosignatures(3, [sig('a.example', 2)]), 'no checkpoint of size 3');
    });

    it('stores meta values, and its migrations are idempotent', async () => {
      assert.equal(await store.getMeta('origin'), undefined);
      await store.setMeta('origin', 'example.test/contract');
      await store.setMeta('origin', 'example.test/contract2');
      assert.equal(await store.getMeta('origin'), 'example.test/contract2');
      // raiseMeta: only ever rises, a non-numeric value is replaced, concurrent raises keep the largest
      await store.raiseMeta('published_size', 7);
      await store.raiseMeta('published_size', 5);
      assert.equal(await store.getMeta('published_size'), '7');
      await store.raiseMeta('published_size', 12);
      assert.equal(await store.getMeta('published_size'), '12');
      await Promise.all([30, 10, 25, 20].map((n) => store.raiseMeta('published_size', n)));
      assert.equal(await store.getMeta('published_size'), '30');
      await store.setMeta('published_size', 'garbage');
      await store.raiseMeta('published_size', 3);
      assert.equal(await store.getMeta('published_size'), '3');
      await assert.rejects(store.raiseMeta('published_size', -1), /not a size/);
      const again = await b.migrateAgain();
      assert.deepEqual(again.applied, []);
      assert.equal(again.to, b.latest);
      assert.equal((await b.migrateAgain()).to, b.latest);
      assert.equal(store.isOpen, true);
    });

    if (backend.name === 'SQLite') {
      it('SQLite: a database made before migrations existed (meta.schema_version 1) opens and is recorded at version 1', async () => {
        const dir = tempDir();
        try {
          const path = join(dir, 'old.sqlite');
          const db = new Database(path);
          db.exec(SCHEMA);
          db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', '1')").run();
          db.close();
          const old = SqliteStore.open(path);
          assert.equal(await old.getMeta('schema_version'), '1');
          const rows = old.sync.db.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>;
          assert.deepEqual(rows.map((r) => r.version), [1]);
          await old.close();
          assert.deepEqual(migrateSqliteFile(path).applied, []);
          // a version from the future is refused
          const f = new Database(path);
          f.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)").run();
          f.close();
          assert.throws(() => SqliteStore.open(path), /unsupported store schema version 99/);
        } finally {
          removeDir(dir);
        }
      });
    }

    if (backend.name === 'PostgreSQL') {
      it('PostgreSQL: of two appends from the same size exactly one commits; a failing fence rolls its batch back', async () => {
        const pgStore = store as PostgresStore;
        await appendN(store, 3);
        const base = (await store.treeState())!;
        const batchAt = (i: number) => ({
          oldSize: 3, entries: [entry(3, { leaf: Buffer.from(`rival ${i}`), fileHash: sha256(Buffer.from(`rival ${i}`)) })], tiles: [],
          newState: { treeSize: 4, rootHash: Buffer.alloc(32, i), checkpoint: `cp 4 rival ${i}\n` }, createdAt: 4,
        });
        const results = await Promise.allSettled([pgStore.append(batchAt(1)), pgStore.append(batchAt(2)), pgStore.append(batchAt(3))]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status)));
        for (const r of results) if (r.status === 'rejected') assert.ok(isPkglogError(r.reason, 'inconsistent') || /duplicate key|unique/.test(String(r.reason)), String(r.reason));
        const won = (await store.treeState())!;
        assert.equal(won.treeSize, 4);
        assert.equal(await store.checkpoint(4), won.checkpoint);
        // the fence runs inside the transaction: it sees the batch's rows, and throwing undoes them
        let sawRow = false;
        await assert.rejects(pgStore.append({ ...batchAt(9), oldSize: 4, entries: [entry(4)], newState: { treeSize: 5, rootHash: Buffer.alloc(32, 9), checkpoint: 'cp 5\n' } },
          async (tx) => {
            sawRow = (await tx.query('SELECT 1 FROM entries WHERE idx = 4')).rowCount === 1;
            throw new Error('lease lost');
          },
        ), /lease lost/);
        assert.equal(sawRow, true);
        assert.equal((await store.treeState())!.treeSize, 4);
        assert.equal(await store.entryLeaf(4), undefined);
        assert.ok(base.treeSize === 3);
      });

      it('PostgreSQL: BIGINT values come back exactly up to 2^53 − 1 and are refused beyond', async () => {
        const max = Number.MAX_SAFE_INTEGER;
        await b.raw(`INSERT INTO checkpoints (tree_size, root_hash, note, created_at) VALUES (${max}, '\\x${'00'.repeat(32)}', 'big', ${max})`);
        assert.equal(await store.lastCheckpointSize(), max);
        assert.equal(await store.checkpoint(max), 'big');
        assert.equal(await store.firstCheckpointSizeIn(max, max + 1), max);
        await b.raw(`INSERT INTO checkpoints (tree_size, root_hash, note, created_at) VALUES (${max} + 2, '\\x${'00'.repeat(32)}', 'too big', 0)`);
        await assert.rejects(store.lastCheckpointSize(), (e: unknown) => isPkglogError(e, 'internal') && /beyond 2\^53/.test((e as Error).message));
        assert.equal(parseBigint('9007199254740991'), max);
        assert.throws(() => parseBigint('9007199254740992'), /beyond/);
        assert.throws(() => parseBigint('1e3'), /not an integer/);
      });
    }
  });
}
