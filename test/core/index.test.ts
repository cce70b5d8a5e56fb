/**
 * The verifiable package index, pure parts: the map function (core/index-keys.ts), the list commitment
 * (core/index-list.ts), the revision leaf (core/index-revision.ts) and the proof bundle (core/index-bundle.ts),
 * checked against test/vectors/index-v1.json and a naive index written from docs/index-format.md
 * (test/support/naive-index.ts), with fast-check properties over random logs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { PkglogError } from '../../core/errors.ts';
import { decodeLeaf, type Entry } from '../../core/entry.ts';
import { entryIndexKeys, indexKey, mapBatch, publisherQuery, type IndexQuery } from '../../core/index-keys.ts';
import {
  EMPTY_INDEX_LIST,
  appendIndexList,
  decodeIndexListState,
  encodeIndexListState,
  indexListRoot,
  indexListValue,
  indexPageHash,
  proveIndexPage,
  verifyIndexPage,
} from '../../core/index-list.ts';
import { formatIndexRevision, parseIndexRevision } from '../../core/index-revision.ts';
import { formatIndexBundle, parseIndexBundle, parseIndexCursor, verifyIndexBundle, type IndexBundle, type IndexCursor, type IndexTrust, type VerifiedIndexBundle } from '../../core/index-bundle.ts';
import { parsePolicy } from '../../core/policy.ts';
import { ReferenceTree } from '../support/reference-tree.ts';
import { naiveHistory, naiveKey, naiveMapRoot, naiveQueries, naiveRevisionLeaf, naiveValue } from '../support/naive-index.ts';
import { INPUT_ORIGIN, IndexFixture, OUTPUT_SIGNER, POLICY, TRUST, WITNESSES, fakeEntry } from '../support/index-fixture.ts';
import { cosignatureSigner } from '../../core/cosignature.ts';
import { createHash } from 'node:crypto';
import { EMPTY_MAP_ROOT } from '../../core/mpt.ts';
import { decodeMapNode, type MemoryMapStore } from '../../core/mpt-store.ts';

const V = JSON.parse(readFileSync(new URL('../vectors/index-v1.json', import.meta.url), 'utf8'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function throwsCode(fn: () => unknown, codes: string[], message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PkglogError, `expected PkglogError, got ${String(e)}`);
    assert.ok(codes.includes(e.code), `expected ${codes.join('|')}, got ${e.code}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/** Follows the cursors: every page of the key's history at one revision. */
function fullHistory(f: IndexFixture, q: IndexQuery, trust: IndexTrust = TRUST): { pages: VerifiedIndexBundle[]; indices: number[] } {
  const pages: VerifiedIndexBundle[] = [];
  let cursor: IndexCursor | undefined;
  for (;;) {
    const v = verifyIndexBundle(f.bundleText(q, cursor), trust, cursor === undefined ? { query: q } : { query: q, cursor });
    pages.push(v);
    if (v.next === null) break;
    cursor = parseIndexCursor(`${v.next.revision}.${v.next.page}`);
  }
  return { pages, indices: pages.flatMap((p) => p.entries.map((e) => e.index)) };
}

function vectorFixture(): { f: IndexFixture; entries: Entry[] } {
  const entries: Entry[] = V.entries.map((e: { leaf: string }) => decodeLeaf(Buffer.from(e.leaf, 'hex')));
  const f = new IndexFixture();
  let at = 0;
  for (const n of V.batches as number[]) {
    f.addBatch(entries.slice(at, at + n));
    at += n;
  }
  return { f, entries };
}

/** Random logs: a few packages, versions, filenames, contents and publishers, so keys repeat. */
const logArb = fc
  .array(
    fc.record({
      name: fc.constantFrom('requests', 'flask', 'numpy'),
      version: fc.constantFrom('1.0', '1.1', '2.0'),
      file: fc.constantFrom('a.whl', 'b.tar.gz', 'c.zip', 'd.egg'),
      content: fc.integer({ min: 0, max: 6 }),
      publisher: fc.integer({ min: 0, max: 2 }),
    }),
    { minLength: 1, maxLength: 40 },
  )
  .map((specs) => {
    // One artifact per file: keep the first upload of each ecosystem/name/version/filename (as the log does).
    const seen = new Set<string>();
    return specs
      .filter((s) => {
        const k = `${s.name}/${s.version}/${s.file}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      })
      .map((s) => fakeEntry({ name: s.name, version: s.version, filename: `${s.name}-${s.version}-${s.file}`, content: String(s.content), publisher: s.publisher }));
  });
const batchCutsArb = fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 10 });

function build(entries: Entry[], cuts: number[]): IndexFixture {
  const f = new IndexFixture();
  let at = 0;
  let c = 0;
  while (at < entries.length) {
    const n = cuts[c++ % cuts.length]!;
    f.addBatch(entries.slice(at, at + n));
    at += n;
  }
  return f;
}

describe('core/index-keys (the map function)', () => {
  it('gives the vector keys, which the naive hashing of the documented bytes reproduces', () => {
    for (const v of V.entries) {
      const e = decodeLeaf(Buffer.from(v.leaf, 'hex'));
      const keys = entryIndexKeys(e).map(hex);
      assert.deepEqual(keys, ['package', 'version', 'file', 'sha256', 'publisher'].map((k) => v.keys[k]));
      assert.deepEqual(naiveQueries(e).map((q) => hex(naiveKey(q))), keys);
    }
  });

  it('keeps the five keys of an entry distinct and validates queries', () => {
    const e = fakeEntry({ name: 'x', version: '1', filename: 'x-1.whl', content: 'c', publisher: 0 });
    assert.equal(new Set(entryIndexKeys(e).map(hex)).size, 5);
    assert.equal(hex(indexKey(publisherQuery(e.publisherKey.toString('base64')))), hex(entryIndexKeys(e)[4]!));
    throwsCode(() => indexKey({ kind: 'package', ecosystem: 'pypi', name: 'Requests' }), ['malformed']); // not PEP 503
    throwsCode(() => indexKey({ kind: 'file', ecosystem: 'pypi', name: 'a', version: '1', filename: 'a/b' }), ['malformed']);
    throwsCode(() => indexKey({ kind: 'sha256', sha256: 'AB'.repeat(32) }), ['malformed']);
    throwsCode(() => publisherQuery('not base64'), ['malformed']);
    throwsCode(() => mapBatch([{ index: 2, entry: e }, { index: 1, entry: e }]), ['malformed']);
  });
});

describe('core/index-list (a key\'s list of indices)', () => {
  it('property: the incremental value equals the naive one; every page proves against it; the state round-trips', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 5 }), (chunks, gap) => {
        let state = EMPTY_INDEX_LIST;
        const all: number[] = [];
        let next = 0;
        for (const n of chunks) {
          const add = Array.from({ length: n }, () => (next += gap));
          all.push(...add);
          state = appendIndexList(state, add);
          assert.equal(hex(indexListValue(state)), hex(naiveValue(all)), 'incremental value = naive value');
          assert.deepEqual(decodeIndexListState(encodeIndexListState(state)), state);
        }
        const pages = Math.ceil(all.length / 64);
        const page = (p: number) => all.slice(64 * p, 64 * p + 64);
        for (let p = 0; p < pages; p++) {
          const proof = proveIndexPage(all.length, p, (q) => indexPageHash(page(q)));
          assert.equal(hex(verifyIndexPage(all.length, p, page(p), proof)), hex(naiveValue(all)));
          // A dropped or changed index does not prove.
          throwsCode(() => verifyIndexPage(all.length, p, page(p).slice(1), proof), ['invalid_proof']);
          const changed = page(p).map((x, i) => (i === 0 ? x + 1 : x));
          if (changed.length === 1 || changed[0]! < changed[1]!) {
            assert.notEqual(hex(verifyIndexPage(all.length, p, changed, proof)), hex(naiveValue(all)));
          }
        }
        throwsCode(() => proveIndexPage(all.length, pages, () => Buffer.alloc(32)), ['out_of_range']);
        const root = indexListRoot(state);
        const naivePages = Array.from({ length: pages }, (_, p) => {
          const b = Buffer.alloc(8 * page(p).length);
          page(p).forEach((x, i) => b.writeBigUInt64BE(BigInt(x), 8 * i));
          return b;
        });
        assert.equal(hex(root), hex(ReferenceTree.fromEntries(naivePages).root()));
      }),
    );
  });

  it('refuses indices that do not increase, and malformed stored states', () => {
    throwsCode(() => appendIndexList(appendIndexList(EMPTY_INDEX_LIST, [5]), [5]), ['malformed']);
    throwsCode(() => appendIndexList(EMPTY_INDEX_LIST, [-1]), ['malformed']);
    const s = encodeIndexListState(appendIndexList(EMPTY_INDEX_LIST, [1, 2, 3]));
    throwsCode(() => decodeIndexListState(s.subarray(0, s.length - 1)), ['malformed']);
    throwsCode(() => decodeIndexListState(Buffer.concat([s, Buffer.alloc(1)])), ['malformed']);
  });
});

describe('core/index-revision (the output log leaf)', () => {
  it('formats the vector leaves, byte for byte as the naive layout, and parses them back', () => {
    const { f, entries } = vectorFixture();
    const tree = ReferenceTree.fromEntries(f.leaves);
    V.revisions.forEach((r: { inputTreeSize: number; mapRoot: string; leaf: string }, i: number) => {
      assert.equal(hex(naiveMapRoot(entries, r.inputTreeSize)), r.mapRoot, `naive map root of revision ${i}`);
      const naive = naiveRevisionLeaf(i, INPUT_ORIGIN, r.inputTreeSize, tree.root(r.inputTreeSize), Buffer.from(r.mapRoot, 'hex'));
      assert.equal(hex(naive), r.leaf);
      assert.equal(hex(f.revisionLeaves[i]!), r.leaf);
      const parsed = parseIndexRevision(Buffer.from(r.leaf, 'hex'));
      assert.equal(parsed.revision, i);
      assert.equal(hex(formatIndexRevision(parsed)), r.leaf);
    });
  });

  it('parses strictly', () => {
    const leaf = Buffer.from(V.revisions[0].leaf, 'hex');
    throwsCode(() => parseIndexRevision(leaf.subarray(0, leaf.length - 1)), ['malformed']);
    throwsCode(() => parseIndexRevision(Buffer.concat([leaf, Buffer.alloc(1)])), ['malformed']);
    throwsCode(() => parseIndexRevision(Buffer.concat([Buffer.from([2]), leaf.subarray(1)])), ['malformed']);
    const badOrigin = Buffer.from(leaf);
    badOrigin[10] = 0x0a; // "\n" in the origin
    throwsCode(() => parseIndexRevision(badOrigin), ['malformed']);
    const huge = Buffer.from(leaf);
    huge[1] = 0xff; // revision > 2^53
    throwsCode(() => parseIndexRevision(huge), ['malformed']);
  });
});

describe('core/index-bundle (proof bundles)', () => {
  it('matches the vector bundles and verifies them: presence with history, and absence', () => {
    const { f, entries } = vectorFixture();
    for (const b of V.bundles) {
      assert.equal(f.bundleText(b.query), b.text, 'the fixture serves the vector bundle');
      const v = verifyIndexBundle(b.text, TRUST, { query: b.query });
      assert.deepEqual(v.entries.map((e) => e.index), naiveHistory(entries, b.query));
      assert.equal(v.present, naiveHistory(entries, b.query).length > 0);
      assert.equal(v.revision.revision, 1);
      assert.equal(v.cosigners.length, 2);
      assert.equal(hex(v.revision.mapRoot), V.revisions[1].mapRoot);
    }
  });

  it('property: for random logs, every key\'s proven history equals a naive scan, and absence is proven exactly for absent keys', () => {
    fc.assert(
      fc.property(logArb, batchCutsArb, (entries, cuts) => {
        const f = build(entries, cuts);
        const queries = new Map<string, IndexQuery>();
        for (const e of entries) for (const q of naiveQueries(e)) queries.set(hex(naiveKey(q)), q);
        // Absent ones: a package, a version, a file, an artifact and a publisher nobody uploaded.
        const absent: IndexQuery[] = [
          { kind: 'package', ecosystem: 'pypi', name: 'nobody' },
          { kind: 'version', ecosystem: 'pypi', name: 'requests', version: '9.9' },
          { kind: 'file', ecosystem: 'pypi', name: 'flask', version: '1.0', filename: 'flask-1.0-x.whl' },
          { kind: 'sha256', sha256: createHash('sha256').update('never uploaded').digest('hex') },
          { kind: 'publisher', publisherKey: createHash('sha256').update('publisher 99').digest() },
        ];
        for (const q of [...queries.values(), ...absent]) {
          const naive = naiveHistory(entries, q);
          const { pages, indices } = fullHistory(f, q);
          assert.deepEqual(indices, naive, `history of ${JSON.stringify(q)}`);
          assert.equal(pages[0]!.present, naive.length > 0);
          for (const p of pages) assert.equal(p.count, naive.length);
        }
        assert.equal(hex(f.index.mapRoot), hex(naiveMapRoot(entries)), 'incremental map root = naive rebuild');
        // A rebuild from scratch in one batch (audit --index) gives the same map root.
        const rebuilt = build(entries, [entries.length]);
        assert.equal(hex(rebuilt.index.mapRoot), hex(f.index.mapRoot));
      }),
      { numRuns: 40 },
    );
  });

  it('paginates a package with many files: 64 per page, cursors pinned to one revision while the log grows', () => {
    const f = new IndexFixture();
    const file = (i: number) => fakeEntry({ name: 'big', version: `1.${i}`, filename: `big-1.${i}.whl`, content: `big ${i}`, publisher: i % 3 });
    const entries = Array.from({ length: 150 }, (_, i) => file(i));
    f.addBatch(entries.slice(0, 100));
    f.addBatch(entries.slice(100, 150));
    const q: IndexQuery = { kind: 'package', ecosystem: 'pypi', name: 'big' };
    const first = verifyIndexBundle(f.bundleText(q), TRUST, { query: q });
    assert.equal(first.count, 150);
    assert.equal(first.entries.length, 64);
    assert.deepEqual(first.next, { revision: 1, page: 1 });
    // The log grows before the client asks for page 1 and 2: the pages stay those of revision 1.
    f.addBatch([file(150), file(151)]);
    const p1 = verifyIndexBundle(f.bundleText(q, first.next!), TRUST, { query: q, cursor: first.next! });
    const p2 = verifyIndexBundle(f.bundleText(q, p1.next!), TRUST, { query: q, cursor: p1.next! });
    assert.equal(p1.checkpoint.treeSize, 3, 'served with the newest output checkpoint');
    assert.deepEqual([...first.entries, ...p1.entries, ...p2.entries].map((e) => e.index), naiveHistory(entries, q));
    assert.equal(p2.next, null);
    assert.equal(p2.entries.length, 22);
    // A bundle's size stays bounded by the page, not the history.
    assert.ok(f.bundleText(q).length < 150_000, `${f.bundleText(q).length} bytes`);
    // Asking for page 1 without the cursor's revision: the server must answer at that revision.
    throwsCode(() => verifyIndexBundle(f.bundleText(q, { revision: 2, page: 1 }), TRUST, { query: q, cursor: { revision: 1, page: 1 } }), ['invalid_proof'], /not the requested revision/);
  });

  it('property: keeping the last K revisions, the store holds exactly the nodes of the kept roots', () => {
    fc.assert(
      fc.property(logArb, batchCutsArb, fc.integer({ min: 1, max: 3 }), (entries, cuts, keep) => {
        const f = new IndexFixture(keep);
        const all = build(entries, cuts);
        let at = 0;
        let c = 0;
        while (at < entries.length) {
          const n = cuts[c++ % cuts.length]!;
          f.addBatch(entries.slice(at, at + n));
          at += n;
        }
        assert.equal(hex(f.index.mapRoot), hex(all.index.mapRoot));
        const revs = f.index.revisions;
        const reachable = new Set<number>();
        const walk = (id: number): void => {
          if (id === 0 || reachable.has(id)) return;
          reachable.add(id);
          const n = decodeMapNode(f.index.store.getMapNode(id)!);
          if (n.kind === 'inner') {
            walk(n.leftId);
            walk(n.rightId);
          }
        };
        for (let r = f.index.oldestRevision; r < revs.length; r++) walk(revs[r]!.root.id);
        assert.equal((f.index.store as MemoryMapStore).size, reachable.size, 'no node kept beyond the kept revisions');
        const q: IndexQuery = naiveQueries(entries[0]!)[0]!;
        const latest = revs.length - 1;
        assert.deepEqual(fullHistory(f, q).indices, naiveHistory(entries, q));
        if (f.index.oldestRevision > 0) {
          throwsCode(() => f.bundle(q, { revision: f.index.oldestRevision - 1, page: 0 }), ['not_found'], /no longer kept/);
        }
        // The oldest kept revision still proves its own history.
        const oldest = f.index.oldestRevision;
        const v = verifyIndexBundle(f.bundleText(q, { revision: oldest, page: 0 }), TRUST, { query: q, cursor: { revision: oldest, page: 0 } });
        assert.deepEqual(v.entries.map((e) => e.index), naiveHistory(entries, q, revs[oldest]!.inputTreeSize).slice(0, 64));
        assert.ok(latest >= oldest);
      }),
      { numRuns: 30 },
    );
  });

  describe('rejects a lying or broken server with a clear message', () => {
    const { f } = vectorFixture();
    const q: IndexQuery = { kind: 'package', ecosystem: 'pypi', name: 'requests' };
    const good = f.bundle(q);

    it('(a) a dropped entry', () => {
      const dropped: IndexBundle = { ...good, entries: good.entries.slice(0, -1) };
      throwsCode(() => verifyIndexBundle(formatIndexBundle(dropped), TRUST, { query: q }), ['invalid_proof'], /must hold 3 entries, the bundle has 2/);
      // Dropping it and lowering the count too: the list no longer matches the map value.
      const recounted: IndexBundle = { ...dropped, count: 2 };
      throwsCode(() => verifyIndexBundle(formatIndexBundle(recounted), TRUST, { query: q }), ['invalid_proof'], /does not match the map root/);
      // Swapping in another entry of the log.
      const swapped: IndexBundle = { ...good, entries: [...good.entries.slice(0, 2), f.bundle({ kind: 'package', ecosystem: 'pypi', name: 'flask' }).entries[0]!] };
      throwsCode(() => verifyIndexBundle(formatIndexBundle(swapped), TRUST, { query: q }), ['invalid_proof']);
    });

    it('(b) another package\'s bundle', () => {
      const other = f.bundleText({ kind: 'package', ecosystem: 'pypi', name: 'flask' });
      throwsCode(() => verifyIndexBundle(other, TRUST, { query: q }), ['invalid_proof'], /bundle is for another key .* not the package pypi\/requests/);
      // Relabelled with the right key: the map proof is for another key.
      const relabelled = { ...parseIndexBundle(other), key: indexKey(q) };
      throwsCode(() => verifyIndexBundle(formatIndexBundle(relabelled), TRUST, { query: q }), ['invalid_proof']);
      // An absence proof for a present key.
      const absent = { ...parseIndexBundle(f.bundleText({ kind: 'package', ecosystem: 'pypi', name: 'absent' })), key: indexKey(q) };
      throwsCode(() => verifyIndexBundle(formatIndexBundle(absent), TRUST, { query: q }), ['invalid_proof'], /lookup path|does not match|ends at the key itself/);
    });

    it('(c) an older revision than one the client already holds', () => {
      // An old output checkpoint (revision 0, size 1): valid on its own, but older than the size the client holds.
      const old = f.bundleText(q, undefined, 1);
      assert.equal(verifyIndexBundle(old, TRUST, { query: q }).revision.revision, 0);
      throwsCode(() => verifyIndexBundle(old, { ...TRUST, knownOutputSize: 2 }, { query: q }), ['inconsistent'], /older than the one already verified/);
      throwsCode(() => verifyIndexBundle(old, { ...TRUST, knownInputSize: 5 }, { query: q }), ['inconsistent'], /input-log size 3, older than the size 5/);
      // An old revision served with the new checkpoint.
      const stale = f.bundleText(q, { revision: 0, page: 0 }, 2);
      throwsCode(() => verifyIndexBundle(stale, TRUST, { query: q }), ['invalid_proof'], /not the latest revision 1/);
      // The newest one passes with what the client holds.
      verifyIndexBundle(f.bundleText(q), { ...TRUST, knownOutputSize: 2, knownInputSize: 5 }, { query: q });
    });

    it('(d) every flipped byte of a bundle (exhaustively, XOR 0x01 and 0x80)', function () {
      this.timeout(120_000);
      const text = Buffer.from(f.bundleText({ kind: 'file', ecosystem: 'pypi', name: 'flask', version: '3.0.0', filename: 'flask-3.0.0.tar.gz' }));
      const query: IndexQuery = { kind: 'file', ecosystem: 'pypi', name: 'flask', version: '3.0.0', filename: 'flask-3.0.0.tar.gz' };
      verifyIndexBundle(text, TRUST, { query });
      for (let i = 0; i < text.length; i++) {
        for (const x of [0x01, 0x80]) {
          const bad = Buffer.from(text);
          bad[i]! ^= x;
          assert.throws(() => verifyIndexBundle(bad, TRUST, { query }), PkglogError, `flipping byte ${i} (${JSON.stringify(String.fromCharCode(text[i]!))}) ^ ${x} was accepted`);
        }
      }
    });

    it('property: any mutated byte of a multi-entry bundle is rejected', () => {
      const text = Buffer.from(f.bundleText(q));
      fc.assert(
        fc.property(fc.nat({ max: text.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
          const bad = Buffer.from(text);
          bad[i]! ^= x;
          assert.throws(() => verifyIndexBundle(bad, TRUST, { query: q }), PkglogError);
        }),
        { numRuns: 300 },
      );
    });

    it('checks the output log\'s policy: signatures, quorum, unknown signers, origin and size caps', () => {
      const only = (signers: typeof WITNESSES) => ({ ...good, checkpoint: f.checkpoint(f.outputSize, signers) });
      throwsCode(() => verifyIndexBundle(formatIndexBundle(only([OUTPUT_SIGNER, WITNESSES[0]!])), TRUST, { query: q }), ['quorum_not_met']);
      throwsCode(() => verifyIndexBundle(formatIndexBundle(only([WITNESSES[0]!, WITNESSES[1]!])), TRUST, { query: q }), ['unknown_key']);
      const stranger = cosignatureSigner('stranger.example', createHash('sha256').update('x').digest(), () => 1);
      const extra = formatIndexBundle(only([OUTPUT_SIGNER, ...WITNESSES, stranger]));
      throwsCode(() => verifyIndexBundle(extra, TRUST, { query: q }), ['unknown_key'], /stranger\.example/);
      verifyIndexBundle(extra, { ...TRUST, allowUnknownSignatures: true }, { query: q });
      throwsCode(() => verifyIndexBundle(formatIndexBundle(good), { ...TRUST, inputOrigin: 'other.example/log' }, { query: q }), ['invalid_proof'], /not "other\.example\/log"/);
      const noWitnessPolicy = parsePolicy(`log ${POLICY.logs[0]!.verifier.name}+${POLICY.logs[0]!.verifier.keyId.toString('hex')}+${Buffer.concat([Buffer.from([1]), POLICY.logs[0]!.verifier.publicKey]).toString('base64')}\nquorum none\n`);
      throwsCode(() => verifyIndexBundle(formatIndexBundle(good), { ...TRUST, policy: noWitnessPolicy }, { query: q }), ['unknown_key'], /w1\.example/);
      throwsCode(() => verifyIndexBundle('x'.repeat(600_000), TRUST, { query: q }), ['too_large']);
      throwsCode(() => verifyIndexBundle(formatIndexBundle(good) + ' ', TRUST, { query: q }), ['malformed'], /not canonical/);
      throwsCode(() => verifyIndexBundle(JSON.stringify({ ...JSON.parse(formatIndexBundle(good)), extra: 1 }), TRUST, { query: q }), ['malformed'], /exactly the fields/);
      throwsCode(() => parseIndexCursor('01.2'), ['malformed']);
      throwsCode(() => parseIndexCursor('1.2.3'), ['malformed']);
      assert.deepEqual(parseIndexCursor('12.0'), { revision: 12, page: 0 });
    });
  });
});
