/**
 * The server's indexer over the SQLite index store (server/indexer.ts, log-store/index-store.ts), against an input
 * log held in memory: every bundle it serves verifies with core's verifyIndexBundle, and the proven history of every
 * key equals a naive scan of the log (absence exactly for absent keys); a restart resumes from the stored revision
 * without reading old entries; a revision cannot be written twice; expired revisions are refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { encodeLeaf, type Entry } from '../../core/entry.ts';
import { formatCheckpoint } from '../../core/checkpoint.ts';
import { ed25519Signer, formatVerifierKey, parseVerifierKey, signNote, SIG_TYPE_ED25519 } from '../../core/note.ts';
import { parsePolicy } from '../../core/policy.ts';
import { isPkglogError } from '../../core/errors.ts';
import { indexKey, type IndexQuery } from '../../core/index-keys.ts';
import { parseIndexRevision } from '../../core/index-revision.ts';
import { verifyIndexBundle, type IndexCursor, type IndexTrust } from '../../core/index-bundle.ts';
import { MemoryIndex } from '../../core/index-memory.ts';
import { SqliteIndexStore } from '../../log-store/index-store.ts';
import { Indexer, outputOrigin, type InputLog } from '../../server/indexer.ts';
import { ReferenceTree } from '../support/reference-tree.ts';
import { fakeEntry } from '../support/index-fixture.ts';
import { naiveHistory, naiveMapRoot, naiveQueries } from '../support/naive-index.ts';
import { tempDir, removeDir } from '../support/log-harness.ts';

const INPUT = 'example.com/log';
const seed = (s: string) => createHash('sha256').update(s).digest();
const inputSigner = ed25519Signer(INPUT, seed('input'));
const OUT = outputOrigin(INPUT);
const outVkey = formatVerifierKey(OUT, SIG_TYPE_ED25519, inputSigner.publicKey);
// The output log is signed with the input log's key under the name <origin>/index (as the server does).
const outSigner = { ...inputSigner, name: OUT, keyId: parseVerifierKey(outVkey).keyId };
const TRUST: IndexTrust = { policy: parsePolicy(`log ${outVkey}\nquorum none\n`), inputOrigin: INPUT };

/** The input log in memory: entries, a signed checkpoint per batch. */
class MemoryInput implements InputLog {
  entries: Entry[] = [];
  leaves: Buffer[] = [];
  tree = ReferenceTree.fromEntries([]);
  notes = new Map<number, string>([[0, signNote(formatCheckpoint({ origin: INPUT, treeSize: 0, rootHash: ReferenceTree.fromEntries([]).root(0), extensions: [] }), [inputSigner])]]);
  reads = 0;
  add(batch: Entry[]): void {
    for (const e of batch) {
      this.entries.push(e);
      this.leaves.push(encodeLeaf(e));
    }
    this.tree = ReferenceTree.fromEntries(this.leaves);
    const size = this.leaves.length;
    this.notes.set(size, signNote(formatCheckpoint({ origin: INPUT, treeSize: size, rootHash: this.tree.root(size), extensions: [] }), [inputSigner]));
  }
  get size(): number {
    return this.leaves.length;
  }
  entryLeaves(start: number, end: number): Buffer[] {
    this.reads += end - start;
    return this.leaves.slice(start, end);
  }
  entryLeaf(i: number): Buffer | undefined {
    return this.leaves[i];
  }
  checkpoint(size: number): string | undefined {
    return this.notes.get(size);
  }
  firstCheckpointSizeIn(lo: number, hi: number): number | undefined {
    return [...this.notes.keys()].filter((s) => s >= lo && s < hi).sort((a, b) => a - b)[0];
  }
}

function indexerFor(store: SqliteIndexStore, input: MemoryInput, keepRevisions?: number): Indexer {
  return new Indexer({
    store, input, inputProof: (i, size) => input.tree.inclusionProof(i, size), inputOrigin: INPUT, signer: outSigner,
    publicSize: () => input.size, ...(keepRevisions !== undefined ? { keepRevisions } : {}),
  });
}

/** Every page of the key's history through the cursors, each verified; the proven indices. */
async function provenHistory(indexer: Indexer, q: IndexQuery): Promise<{ present: boolean; indices: number[]; inputSize: number }> {
  const indices: number[] = [];
  let cursor: IndexCursor | undefined;
  let present = false;
  let inputSize = -1;
  for (let n = 0; n < 1000; n++) {
    const text = await indexer.bundle(q, cursor);
    const v = verifyIndexBundle(text, TRUST, cursor === undefined ? { query: q } : { query: q, cursor });
    if (inputSize === -1) inputSize = v.revision.inputTreeSize;
    assert.equal(v.revision.inputTreeSize, inputSize, 'every page is at one revision');
    present = v.present;
    indices.push(...v.entries.map((e) => e.index));
    if (v.next === null) return { present, indices, inputSize };
    cursor = v.next;
  }
  throw new Error('too many pages');
}

const absentQueries: IndexQuery[] = [
  { kind: 'package', ecosystem: 'pypi', name: 'nobody' },
  { kind: 'version', ecosystem: 'pypi', name: 'p0', version: '9.9' },
  { kind: 'file', ecosystem: 'pypi', name: 'p0', version: '1.0', filename: 'nope.tar.gz' },
  { kind: 'sha256', sha256: '00'.repeat(32) },
  { kind: 'publisher', publisherKey: seed('nobody') },
];

describe('server indexer over the SQLite index store', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = tempDir('pkglog-indexer-');
  });
  afterEach(() => removeDir(dir));

  it('property: for random logs and batches, every key\'s proven history equals the naive scan; absence proofs exactly for absent keys', async () => {
    let run = 0;
    await fc.assert(fc.asyncProperty(
      fc.array(fc.record({ pkg: fc.nat(3), version: fc.nat(2), file: fc.nat(1), content: fc.nat(40), publisher: fc.nat(2) }), { minLength: 0, maxLength: 60 }),
      fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 12 }),
      async (spec, cuts) => {
        // Distinct files (one artifact per file), as the log guarantees.
        const seen = new Set<string>();
        const entries = spec.filter((s) => {
          const k = `${s.pkg}/${s.version}/${s.file}`;
          if (seen.has(k)) return false;
          seen.add(k);
          return true;
        }).map((s) => fakeEntry({ name: `p${s.pkg}`, version: `1.${s.version}`, filename: `p${s.pkg}-1.${s.version}-${s.file}.tar.gz`, content: String(s.content), publisher: s.publisher }));
        const store = SqliteIndexStore.open(join(dir, `p${run++}.sqlite`));
        try {
          const input = new MemoryInput();
          const indexer = indexerFor(store, input);
          assert.equal(await indexer.step(), true, 'revision 0: the empty log');
          let at = 0;
          for (const c of cuts) {
            if (at >= entries.length) break;
            input.add(entries.slice(at, at + c));
            at = Math.min(entries.length, at + c);
            assert.equal(await indexer.step(), true);
            assert.equal(await indexer.step(), false, 'caught up');
          }
          const queries = [...entries.flatMap(naiveQueries), ...absentQueries];
          for (const q of queries) {
            const h = await provenHistory(indexer, q);
            assert.equal(h.inputSize, input.size);
            const naive = naiveHistory(input.entries, q);
            assert.deepEqual(h.indices, naive, `history of ${JSON.stringify(q, (_k, v) => (v?.type === 'Buffer' ? 'buf' : v))}`);
            assert.equal(h.present, naive.length > 0, 'absence proven exactly for absent keys');
          }
          const head = (await indexer.currentHead())!;
          assert.deepEqual(head.mapRoot, naiveMapRoot(input.entries), 'the map root is the naive one');
          const last = parseIndexRevision((await store.revision(head.revisions - 1))!.leaf);
          assert.equal(last.inputTreeSize, input.size);
          assert.deepEqual(last.inputRootHash, input.tree.root(input.size));
        } finally {
          await store.close();
        }
      },
    ), { numRuns: 12 });
  });

  it('a key with 300 entries: five pages through cursors, list-tree nodes above the pages, older revisions stay provable', async () => {
    const store = SqliteIndexStore.open(join(dir, 'big.sqlite'));
    try {
      const input = new MemoryInput();
      const indexer = indexerFor(store, input);
      await indexer.step();
      const all = Array.from({ length: 300 }, (_, i) => fakeEntry({ name: i % 3 === 0 ? 'big' : `o${i}`, version: `1.${i}`, filename: `f-${i}.tar.gz`, content: `c${i}`, publisher: 1 }));
      for (let at = 0; at < all.length; at += 37) {
        input.add(all.slice(at, at + 37));
        await indexer.step();
      }
      const pub: IndexQuery = { kind: 'publisher', publisherKey: all[0]!.publisherKey };
      const h = await provenHistory(indexer, pub);
      assert.deepEqual(h.indices, Array.from({ length: 300 }, (_, i) => i));
      const big = await provenHistory(indexer, { kind: 'package', ecosystem: 'pypi', name: 'big' });
      assert.deepEqual(big.indices, naiveHistory(input.entries, { kind: 'package', ecosystem: 'pypi', name: 'big' }));
      // An older revision through its cursor: the list as of that revision (a prefix).
      const head = (await indexer.currentHead())!;
      const r = head.revisions - 3;
      const old = verifyIndexBundle(await indexer.bundle(pub, { revision: r, page: 1 }), TRUST, { query: pub, cursor: { revision: r, page: 1 } });
      assert.equal(old.count, old.revision.inputTreeSize);
      assert.deepEqual(old.entries.map((e) => e.index), Array.from({ length: 64 }, (_, i) => 64 + i));
    } finally {
      await store.close();
    }
  });

  it('a restart resumes from the stored revision: nothing is read or rebuilt at start-up, and the roots equal a from-scratch build', async () => {
    const file = join(dir, 'restart.sqlite');
    const input = new MemoryInput();
    const entries = Array.from({ length: 120 }, (_, i) => fakeEntry({ name: `p${i % 7}`, version: `1.${i}`, filename: `p-${i}.tar.gz`, content: `r${i}`, publisher: i % 3 }));
    let store = SqliteIndexStore.open(file);
    let indexer = indexerFor(store, input);
    await indexer.step();
    for (let at = 0; at < 80; at += 20) {
      input.add(entries.slice(at, at + 20));
      await indexer.step();
    }
    const before = (await indexer.currentHead())!;
    await store.close();

    store = SqliteIndexStore.open(file);
    try {
      input.reads = 0;
      indexer = indexerFor(store, input);
      assert.deepEqual(await indexer.currentHead(), before, 'the head is read back');
      assert.equal(await indexer.step(), false, 'nothing to do');
      assert.equal(input.reads, 0, 'no input entry read at start-up');
      assert.deepEqual(indexer.stats, { revisions: 0, entries: 0, entriesRead: 0 });
      // A database older than what the output log published (its high-water mark) never signs again.
      const behind = new Indexer({
        store, input, inputProof: (i, size) => input.tree.inclusionProof(i, size), inputOrigin: INPUT, signer: outSigner,
        publicSize: () => input.size + 1, publishedRevisions: before.revisions + 1,
      });
      await assert.rejects(behind.step(), (e: unknown) => isPkglogError(e, 'unsafe_state'));
      assert.deepEqual(await store.head(), before);
      input.add(entries.slice(80, 120));
      assert.equal(await indexer.step(), true);
      assert.equal(indexer.stats.entriesRead, 40, 'only the new batch is read');
      const memory = new MemoryIndex();
      for (let at = 0; at < 120; at += at < 80 ? 20 : 40) memory.appendBatch(entries.slice(at, at < 80 ? at + 20 : at + 40));
      assert.deepEqual((await indexer.currentHead())!.mapRoot, memory.mapRoot);
      const h = await provenHistory(indexer, { kind: 'package', ecosystem: 'pypi', name: 'p3' });
      assert.deepEqual(h.indices, naiveHistory(input.entries, { kind: 'package', ecosystem: 'pypi', name: 'p3' }));
    } finally {
      await store.close();
    }
  });

  it('idempotent: a second indexer on the same store finds nothing to do; a stale revision write fails the compare-and-swap and changes nothing', async () => {
    const file = join(dir, 'cas.sqlite');
    const input = new MemoryInput();
    const a = SqliteIndexStore.open(file);
    const b = SqliteIndexStore.open(file);
    try {
      const ia = indexerFor(a, input);
      await ia.step();
      input.add([fakeEntry({ name: 'x', version: '1', filename: 'x-1.tar.gz', content: 'x', publisher: 0 })]);
      assert.equal(await ia.step(), true);
      const head = (await a.head())!;
      const ib = indexerFor(b, input);
      assert.equal(await ib.step(), false, 'the revision is already written');
      const stale = {
        oldRevisions: 1, head: { ...head, revisions: 2 }, revision: { revision: 1, inputSize: 1, mapRoot: head.mapRoot, mapRootId: head.mapRootId, leaf: Buffer.alloc(1) },
        nodes: [], replaced: [], pages: [], listNodes: [], tiles: [], checkpoint: { treeSize: 2, note: 'x' },
      };
      await assert.rejects(b.commit(stale), (e: unknown) => isPkglogError(e, 'inconsistent'));
      // A writer whose node ids are already taken is refused too, even at the right revision count.
      const taken = { ...stale, oldRevisions: 2, head: { ...head, revisions: 3 }, nodes: [{ id: head.nextNodeId - 1, hash: Buffer.alloc(32), node: Buffer.alloc(65) }] };
      await assert.rejects(b.commit(taken), (e: unknown) => isPkglogError(e, 'inconsistent'));
      assert.deepEqual(await a.head(), head);
      assert.equal((await a.revisionLeaves(0, 10)).length, 2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('keeps the last K revisions provable: an expired cursor is not_found, the latest still verifies, old paths are deleted', async () => {
    const store = SqliteIndexStore.open(join(dir, 'keep.sqlite'), { sweepFraction: 0, regionBits: 4 });
    try {
      const input = new MemoryInput();
      const indexer = indexerFor(store, input, 3);
      await indexer.step();
      const q: IndexQuery = { kind: 'package', ecosystem: 'pypi', name: 'k' };
      const batches: Entry[][] = [];
      for (let i = 0; i < 8; i++) batches.push([fakeEntry({ name: 'k', version: `1.${i}`, filename: `k-1.${i}.tar.gz`, content: `k${i}`, publisher: 0 })]);
      // Larger batches too: hundreds of nodes created and deleted per revision (multi-row statements).
      for (let b = 0; b < 3; b++) batches.push(Array.from({ length: 100 }, (_, i) => fakeEntry({ name: `m${b}-${i}`, version: '1', filename: `m${b}-${i}.tar.gz`, content: `m${b}/${i}`, publisher: i % 5 })));
      for (const batch of batches) {
        input.add(batch);
        await indexer.step();
      }
      await assert.rejects(indexer.bundle(q, { revision: 2, page: 0 }), (e: unknown) => isPkglogError(e, 'not_found'));
      const v = verifyIndexBundle(await indexer.bundle(q, { revision: 10, page: 0 }), TRUST, { query: q, cursor: { revision: 10, page: 0 } });
      assert.equal(v.count, 8);
      assert.equal((await provenHistory(indexer, q)).indices.length, 8);
      // Each revision sweeps one region; finish the sweep, then exactly the kept revisions' nodes remain.
      const head = (await store.head())!;
      while ((await store.sweep(head.revisions - 3, head.revisions - 3)) > 0);
      const nodes = (store.db.prepare('SELECT count(*) AS n FROM index_map_nodes').get() as { n: number }).n;
      assert.equal((store.db.prepare('SELECT count(*) AS n FROM index_dead WHERE revision <= ?').get(head.revisions - 3) as { n: number }).n, 0);
      const memory = new MemoryIndex({ keepRevisions: 3 });
      memory.appendBatch([]);
      for (const batch of batches) memory.appendBatch(batch);
      assert.deepEqual((await indexer.currentHead())!.mapRoot, memory.mapRoot);
      assert.equal(nodes, (memory.store as unknown as { size: number }).size, 'the stored nodes are those of the kept revisions');
      assert.equal(indexKey(q).length, 32);
    } finally {
      await store.close();
    }
  });
});
