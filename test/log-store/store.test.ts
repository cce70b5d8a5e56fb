/** Store contract: append-only enforced by the database, compare-and-swap on the tree size, tiles only grow. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EMPTY_ROOT, leafHash, sha256 } from '../../core/hash.ts';
import { integrate } from '../../core/integrate.ts';
import { LogStore, type StoredEntry } from '../../log-store/store.ts';
import { tempDir, removeDir } from '../support/log-harness.ts';

function entry(index: number): StoredEntry {
  const leaf = Buffer.from(`leaf ${index}`);
  return {
    index, leaf, leafHash: leafHash(leaf), fileHash: sha256(Buffer.from(`file ${index}`)), ecosystem: 'pypi', name: 'p',
    version: `v${index}`, sha256: sha256(leaf), integratedTime: 1000 + index,
  };
}

/** Appends n entries through integrate, as the sequencer does. */
function appendN(store: LogStore, n: number) {
  const state = store.treeState()!;
  const entries = Array.from({ length: n }, (_, i) => entry(state.treeSize + i));
  const r = integrate(state.treeSize, (t) => store.readTile(t)!, entries.map((e) => e.leafHash));
  store.append({ oldSize: state.treeSize, entries, tiles: r.tiles, newState: { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: `cp ${r.treeSize}` }, createdAt: 1 });
  return r;
}

describe('log-store', () => {
  let dir: string;
  let store: LogStore;
  beforeEach(() => {
    dir = tempDir();
    store = LogStore.open(join(dir, 'log.sqlite'));
    store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: 'cp 0' }, 0);
  });
  afterEach(() => {
    store.close();
    removeDir(dir);
  });

  it('uses WAL and synchronous=FULL', () => {
    assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(store.db.pragma('synchronous', { simple: true }), 2);
  });

  it('appends batches and reads back entries, tiles and checkpoints', () => {
    appendN(store, 200);
    const r = appendN(store, 100);
    assert.equal(store.treeState()!.treeSize, 300);
    assert.ok(store.treeState()!.rootHash.equals(r.rootHash));
    assert.ok(store.entryLeaf(250)!.equals(Buffer.from('leaf 250')));
    assert.equal(store.entryLeaves(254, 258).length, 4);
    assert.equal(store.tile(0, 0)!.width, 256);
    assert.equal(store.tile(0, 1)!.width, 44);
    assert.equal(store.readTile({ level: 0, index: 0, width: 200 })!.length, 200 * 32);
    assert.equal(store.readTile({ level: 0, index: 1, width: 45 }), undefined);
    assert.equal(store.checkpoint(200), 'cp 200');
    assert.equal(store.findByLeafHash(leafHash(Buffer.from('leaf 7')), 300), 7);
    assert.equal(store.findByLeafHash(leafHash(Buffer.from('leaf 7')), 7), undefined);
    assert.equal(store.findByFile(sha256(Buffer.from('file 9')))!.index, 9);
  });

  it('survives reopening with the same state', () => {
    const r = appendN(store, 10);
    store.close();
    store = LogStore.open(join(dir, 'log.sqlite'));
    assert.equal(store.treeState()!.treeSize, 10);
    assert.ok(store.treeState()!.rootHash.equals(r.rootHash));
  });

  it('refuses a batch whose old size is stale (compare-and-swap) and writes nothing of it', () => {
    appendN(store, 5);
    const e = entry(5);
    assert.throws(
      () => store.append({ oldSize: 3, entries: [e], tiles: [], newState: { treeSize: 4, rootHash: EMPTY_ROOT, checkpoint: 'x' }, createdAt: 1 }),
      (err: { code?: string }) => err.code === 'inconsistent',
    );
    assert.equal(store.treeState()!.treeSize, 5);
    assert.equal(store.entryLeaf(5), undefined);
    assert.equal(store.checkpoint(4), undefined);
  });

  it('refuses UPDATE and DELETE of entries, checkpoints and cosignatures in the database itself', () => {
    appendN(store, 300);
    assert.equal(store.tileWithInner(0, 0)!.inner!.length, 254 * 32, 'a full tile is stored with its inner levels');
    assert.equal(store.tileWithInner(0, 1)!.inner, undefined);
    store.addCosignatures(300, [{ keyName: 'w', keyId: Buffer.alloc(4), line: '— w AAAA' }]);
    for (const sql of [
      "UPDATE entries SET leaf = x'00' WHERE idx = 0",
      'DELETE FROM entries WHERE idx = 2',
      "UPDATE checkpoints SET note = 'forged' WHERE tree_size = 300",
      'DELETE FROM checkpoints',
      "UPDATE cosignatures SET line = 'x'",
      'DELETE FROM cosignatures',
      'DELETE FROM tiles',
      "UPDATE tiles SET inner = zeroblob(8128) WHERE level = 0 AND idx = 0",
      'UPDATE tree SET tree_size = 1',
    ]) {
      assert.throws(() => store.db.exec(sql), /append-only|immutable|never shrinks|only grow/, sql);
    }
  });

  it('lets a hash tile only grow by extension, never change or shrink', () => {
    appendN(store, 10);
    const t = store.tile(0, 0)!;
    const changed = Buffer.from(t.data);
    changed[0]! ^= 1;
    assert.throws(() => store.db.prepare('UPDATE tiles SET width = 11, data = ? WHERE level = 0 AND idx = 0').run(Buffer.concat([changed, Buffer.alloc(32)])), /only grow/);
    assert.throws(() => store.db.prepare('UPDATE tiles SET width = 9, data = ? WHERE level = 0 AND idx = 0').run(t.data.subarray(0, 9 * 32)), /only grow/);
    store.db.prepare('UPDATE tiles SET width = 11, data = ? WHERE level = 0 AND idx = 0').run(Buffer.concat([t.data, Buffer.alloc(32)]));
  });

  it('enforces one artifact per file with a unique index', () => {
    appendN(store, 1);
    const dup = { ...entry(1), fileHash: entry(0).fileHash };
    assert.throws(() => store.append({ oldSize: 1, entries: [dup], tiles: [], newState: { treeSize: 2, rootHash: EMPTY_ROOT, checkpoint: 'x' }, createdAt: 1 }), /UNIQUE/);
    assert.equal(store.treeState()!.treeSize, 1, 'the failed transaction left nothing behind');
  });

  it('stores cosignatures idempotently and reports cosigned sizes', () => {
    appendN(store, 2);
    appendN(store, 2);
    store.addCosignatures(2, [{ keyName: 'a', keyId: Buffer.from('aaaa'), line: '— a 1' }]);
    store.addCosignatures(4, [{ keyName: 'a', keyId: Buffer.from('aaaa'), line: '— a 2' }, { keyName: 'b', keyId: Buffer.from('bbbb'), line: '— b 2' }]);
    store.addCosignatures(4, [{ keyName: 'a', keyId: Buffer.from('aaaa'), line: '— a 2' }]);
    assert.deepEqual(store.cosignatureLines(4), ['— a 2', '— b 2']);
    assert.deepEqual(store.cosignedSizes(0), [{ treeSize: 4, count: 2 }, { treeSize: 2, count: 1 }]);
  });
});
