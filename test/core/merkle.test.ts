import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { MerkleTree } from 'merkletreejs';
import {
  type NodeId,
  completeSubtrees,
  hashRanges,
  nodesOf,
  planConsistencyProof,
  planInclusionProof,
  planRoot,
  rootFromInclusionProof,
  verifyConsistency,
  verifyInclusion,
} from '../../core/merkle.ts';
import { EMPTY_ROOT, leafHash } from '../../core/hash.ts';
import { PkglogError, type ErrorCode } from '../../core/errors.ts';
import { ReferenceTree, perfectHashes, refLeafHash } from '../support/reference-tree.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Buffer => Buffer.from(s, 'hex');
const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

function throwsCode(fn: () => unknown, code: ErrorCode | ErrorCode[]): void {
  const codes = Array.isArray(code) ? code : [code];
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PkglogError, `expected PkglogError, got ${String(e)}`);
    assert.ok(codes.includes(e.code), `expected ${codes.join('|')}, got ${e.code}: ${e.message}`);
    return true;
  });
}

/** Random but reproducible leaf hashes. */
function leafHashes(n: number, seed: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => refLeafHash(Buffer.from(`${seed}/${i}`)));
}

const nodeGetter = (ref: ReferenceTree) => (n: NodeId) => ref.mth(n.index * 2 ** n.level, (n.index + 1) * 2 ** n.level);
const planned = {
  inclusion: (ref: ReferenceTree, i: number, n: number) => hashRanges(planInclusionProof(i, n), nodeGetter(ref)),
  consistency: (ref: ReferenceTree, m: number, n: number) => hashRanges(planConsistencyProof(m, n), nodeGetter(ref)),
  root: (ref: ReferenceTree, n: number) => hashRanges([planRoot(n)], nodeGetter(ref))[0]!,
};

// RFC 6962 test tree (certificate-transparency; transparency-dev/merkle testonly and proof/verify_test.go).
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(unhex);
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const CT_INCLUSION = [
  { index: 0, size: 1, proof: [] as string[] },
  { index: 0, size: 8, proof: ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'] },
  { index: 5, size: 8, proof: ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'] },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  { index: 1, size: 5, proof: ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'] },
];
const CT_CONSISTENCY = [
  { from: 1, to: 1, proof: [] as string[] },
  { from: 1, to: 8, proof: ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'] },
  { from: 6, to: 8, proof: ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'] },
  { from: 2, to: 5, proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'] },
  { from: 6, to: 7, proof: ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'] },
];

describe('core/merkle', () => {
  describe('known answers (RFC 6962 test tree)', () => {
    const ref = ReferenceTree.fromEntries(CT_LEAVES);

    it('the reference tree and planRoot reproduce the roots of sizes 1…8 (incl. the pitfalls note: 3 and 8)', () => {
      assert.equal(hex(ref.root(8)), '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
      assert.equal(hex(ref.root(3)), 'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77');
      for (let n = 1; n <= 8; n++) {
        assert.equal(hex(ref.root(n)), CT_ROOTS[n - 1], `reference root ${n}`);
        assert.equal(hex(planned.root(ref, n)), CT_ROOTS[n - 1], `planned root ${n}`);
      }
      assert.equal(hex(ref.root(0)), hex(EMPTY_ROOT));
      assert.equal(hex(ref.leafHashes[0]!), hex(leafHash(CT_LEAVES[0]!)));
    });

    it('planned inclusion proofs equal the published vectors and verify', () => {
      for (const v of CT_INCLUSION) {
        const proof = planned.inclusion(ref, v.index, v.size);
        assert.deepEqual(proof.map(hex), v.proof, `inclusion ${v.index}@${v.size}`);
        assert.deepEqual(ref.inclusionProof(v.index, v.size).map(hex), v.proof);
        verifyInclusion(v.index, v.size, ref.leafHashes[v.index]!, v.proof.map(unhex), unhex(CT_ROOTS[v.size - 1]!));
      }
    });

    it('planned consistency proofs equal the published vectors and verify', () => {
      for (const v of CT_CONSISTENCY) {
        assert.deepEqual(planned.consistency(ref, v.from, v.to).map(hex), v.proof, `consistency ${v.from}→${v.to}`);
        assert.deepEqual(ref.consistencyProof(v.from, v.to).map(hex), v.proof);
        verifyConsistency(v.from, v.to, unhex(CT_ROOTS[v.from - 1]!), unhex(CT_ROOTS[v.to - 1]!), v.proof.map(unhex));
      }
    });

    it('every intermediate root and proof of the 8-leaf tree matches the reference', () => {
      for (let n = 1; n <= 8; n++) {
        for (let i = 0; i < n; i++) {
          const proof = planned.inclusion(ref, i, n);
          assert.deepEqual(proof, ref.inclusionProof(i, n));
          assert.deepEqual(rootFromInclusionProof(i, n, ref.leafHashes[i]!, proof), unhex(CT_ROOTS[n - 1]!));
        }
        for (let m = 1; m <= n; m++) {
          const proof = planned.consistency(ref, m, n);
          assert.deepEqual(proof, ref.consistencyProof(m, n));
          verifyConsistency(m, n, ref.root(m), ref.root(n), proof);
        }
      }
    });
  });

  describe('completeSubtrees / planRoot / nodesOf', () => {
    it('decomposes ranges into maximal aligned complete subtrees, left to right', () => {
      const fmt = (ns: NodeId[]) => ns.map((n) => `${n.level}/${n.index}`).join(' ');
      assert.equal(fmt(completeSubtrees(0, 0)), '');
      assert.equal(fmt(completeSubtrees(0, 1)), '0/0');
      assert.equal(fmt(completeSubtrees(0, 7)), '2/0 1/2 0/6');
      assert.equal(fmt(completeSubtrees(0, 8)), '3/0');
      assert.equal(fmt(completeSubtrees(4, 7)), '1/2 0/6');
      assert.equal(fmt(completeSubtrees(8, 16)), '3/1');
      assert.equal(fmt(completeSubtrees(256, 256 + 70)), '6/4 2/80 1/162');
      assert.equal(fmt(completeSubtrees(3, 8)), '0/3 2/1'); // not a subtree range: greedy aligned
      assert.equal(fmt(completeSubtrees(0, 2 ** 53 - 1)).split(' ').length, 53);
      assert.equal(fmt(completeSubtrees(0, 2 ** 52)), '52/0');
    });

    it('rejects impossible ranges with out_of_range', () => {
      throwsCode(() => completeSubtrees(5, 4), 'out_of_range');
      throwsCode(() => completeSubtrees(-1, 4), 'out_of_range');
      throwsCode(() => completeSubtrees(0, 2 ** 53), 'out_of_range');
      throwsCode(() => completeSubtrees(0.5, 4), 'out_of_range');
      throwsCode(() => planRoot(0), 'out_of_range');
    });

    it('planRoot covers [0, n) and nodesOf deduplicates', () => {
      assert.deepEqual(planRoot(7), { start: 0, end: 7, nodes: completeSubtrees(0, 7) });
      const ranges = [...planInclusionProof(3, 13), ...planConsistencyProof(5, 13), planRoot(13)];
      const nodes = nodesOf(ranges);
      const keys = nodes.map((n) => `${n.level}/${n.index}`);
      assert.equal(new Set(keys).size, keys.length);
      assert.deepEqual(new Set(keys), new Set(ranges.flatMap((r) => r.nodes.map((n) => `${n.level}/${n.index}`))));
    });

    it('every proof range is an RFC 6962 subtree covered by its nodes', () => {
      for (let n = 1; n <= 40; n++) {
        const all = [planRoot(n)];
        for (let i = 0; i < n; i++) all.push(...planInclusionProof(i, n));
        for (let m = 1; m <= n; m++) all.push(...planConsistencyProof(m, n));
        for (const r of all) {
          assert.ok(r.start < r.end && r.end <= n);
          let pos = r.start;
          for (const node of r.nodes) {
            assert.equal(node.index * 2 ** node.level, pos);
            pos += 2 ** node.level;
          }
          assert.equal(pos, r.end);
        }
      }
    });
  });

  describe('exhaustive small trees against the reference', () => {
    it('all inclusion and consistency proofs for sizes 1…70', function () {
      this.timeout(20000);
      const ref = ReferenceTree.fromLeafHashes(leafHashes(70, 1));
      for (let n = 1; n <= 70; n++) {
        const root = ref.root(n);
        assert.deepEqual(planned.root(ref, n), root);
        for (let i = 0; i < n; i++) {
          const proof = planned.inclusion(ref, i, n);
          assert.deepEqual(proof, ref.inclusionProof(i, n), `inclusion ${i}@${n}`);
          verifyInclusion(i, n, ref.leafHashes[i]!, proof, root);
        }
        for (let m = 1; m <= n; m++) {
          const proof = planned.consistency(ref, m, n);
          assert.deepEqual(proof, ref.consistencyProof(m, n), `consistency ${m}→${n}`);
          verifyConsistency(m, n, ref.root(m), root, proof);
        }
      }
    });
  });

  describe('merkletreejs cross-check', () => {
    // merkletreejs builds bottom-up and promotes an odd last node unchanged (duplicateOdd: false), which is exactly the
    // RFC 6962 shape (split at the largest power of two < n) for every size, so roots and proofs can be compared.
    const build = (hashes: Buffer[]) =>
      new MerkleTree(hashes, (d: Buffer) => sha(Buffer.from([0x01]), d), { hashLeaves: false, sortPairs: false, duplicateOdd: false });

    it('reproduces the RFC 6962 known-answer roots', () => {
      for (let n = 1; n <= 8; n++) assert.equal(hex(build(CT_LEAVES.slice(0, n).map(leafHash)).getRoot()), CT_ROOTS[n - 1]);
    });

    it('roots and inclusion proofs agree on random trees', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 2 ** 31 }), fc.nat(), (n, seed, pick) => {
          const hashes = leafHashes(n, seed);
          const ref = ReferenceTree.fromLeafHashes(hashes);
          const mt = build(hashes);
          assert.deepEqual(mt.getRoot(), ref.root());
          for (const i of [0, n - 1, pick % n]) {
            const theirs = mt.getProof(hashes[i]!, i).map((p) => p.data);
            assert.deepEqual(planned.inclusion(ref, i, n), theirs);
            verifyInclusion(i, n, hashes[i]!, theirs, mt.getRoot());
          }
        }),
        { numRuns: 60 },
      );
    });
  });

  describe('mutations never verify', () => {
    const flip = (proof: Buffer[], j: number, bit: number): Buffer[] =>
      proof.map((h, k) => {
        if (k !== j) return h;
        const c = Buffer.from(h);
        c[bit >> 3]! ^= 1 << (bit & 7);
        return c;
      });
    const junk = sha(Buffer.from('junk'));

    it('inclusion: bit flips, other indices, other sizes, truncation, extension, wrong leaf or root', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 160 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }), (n, iRaw, seed, bit) => {
          const i = iRaw % n;
          const ref = ReferenceTree.fromLeafHashes(leafHashes(2 * n + 2, seed));
          const root = ref.root(n);
          const leaf = ref.leafHashes[i]!;
          const proof = planned.inclusion(ref, i, n);
          verifyInclusion(i, n, leaf, proof, root);
          for (let j = 0; j < proof.length; j++) throwsCode(() => verifyInclusion(i, n, leaf, flip(proof, j, bit), root), 'invalid_proof');
          throwsCode(() => verifyInclusion(i, n, flip([leaf], 0, bit)[0]!, proof, root), 'invalid_proof');
          throwsCode(() => verifyInclusion(i, n, leaf, proof, flip([root], 0, bit)[0]!), 'invalid_proof');
          for (let i2 = 0; i2 < n + 2; i2++) {
            if (i2 === i) continue;
            throwsCode(() => verifyInclusion(i2, n, leaf, proof, root), i2 < n ? 'invalid_proof' : 'out_of_range');
          }
          for (let n2 = 0; n2 <= 2 * n + 2; n2++) {
            if (n2 === n) continue;
            throwsCode(() => verifyInclusion(i, n2, leaf, proof, ref.root(n2)), i < n2 ? 'invalid_proof' : 'out_of_range');
          }
          if (proof.length > 0) {
            throwsCode(() => verifyInclusion(i, n, leaf, proof.slice(0, -1), root), 'invalid_proof');
            throwsCode(() => verifyInclusion(i, n, leaf, proof.slice(1), root), 'invalid_proof');
          }
          throwsCode(() => verifyInclusion(i, n, leaf, [...proof, junk], root), 'invalid_proof');
          throwsCode(() => verifyInclusion(i, n, leaf, [...proof, root], root), 'invalid_proof');
          throwsCode(() => verifyInclusion(i, n, leaf, [junk, ...proof], root), 'invalid_proof');
          throwsCode(() => verifyInclusion(i, n, leaf, [...proof, Buffer.alloc(0)], root), 'invalid_proof');
        }),
        { numRuns: 80 },
      );
    });

    it('consistency: bit flips, other sizes, truncation, extension, swapped or wrong roots', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 160 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }), (n, mRaw, seed, bit) => {
          const m = 1 + (mRaw % n);
          const ref = ReferenceTree.fromLeafHashes(leafHashes(2 * n + 2, seed));
          const [r1, r2] = [ref.root(m), ref.root(n)];
          const proof = planned.consistency(ref, m, n);
          verifyConsistency(m, n, r1, r2, proof);
          for (let j = 0; j < proof.length; j++) throwsCode(() => verifyConsistency(m, n, r1, r2, flip(proof, j, bit)), 'invalid_proof');
          throwsCode(() => verifyConsistency(m, n, flip([r1], 0, bit)[0]!, r2, proof), 'invalid_proof');
          throwsCode(() => verifyConsistency(m, n, r1, flip([r2], 0, bit)[0]!, proof), 'invalid_proof');
          if (m !== n) throwsCode(() => verifyConsistency(m, n, r2, r1, proof), 'invalid_proof');
          for (let m2 = 0; m2 <= 2 * n + 2; m2++) {
            if (m2 === m) continue;
            if (m2 === 0 && proof.length === 0) continue; // the empty proof from size 0 is valid by definition
            throwsCode(() => verifyConsistency(m2, n, ref.root(m2), r2, proof), m2 <= n ? 'invalid_proof' : 'out_of_range');
          }
          for (let n2 = 0; n2 <= 2 * n + 2; n2++) {
            if (n2 === n) continue;
            throwsCode(() => verifyConsistency(m, n2, r1, ref.root(n2), proof), m <= n2 ? 'invalid_proof' : 'out_of_range');
          }
          if (proof.length > 0) {
            throwsCode(() => verifyConsistency(m, n, r1, r2, proof.slice(0, -1)), 'invalid_proof');
            throwsCode(() => verifyConsistency(m, n, r1, r2, proof.slice(1)), 'invalid_proof');
            throwsCode(() => verifyConsistency(m, n, r1, r2, []), 'invalid_proof');
            throwsCode(() => verifyConsistency(m, n, r1, r2, [proof[0]!, ...proof]), 'invalid_proof');
          }
          throwsCode(() => verifyConsistency(m, n, r1, r2, [...proof, junk]), 'invalid_proof');
          throwsCode(() => verifyConsistency(m, n, r1, r2, [...proof, r1]), 'invalid_proof');
          throwsCode(() => verifyConsistency(m, n, r1, r2, [...proof, r2]), 'invalid_proof');
          throwsCode(() => verifyConsistency(m, n, r1, r2, [junk, ...proof]), 'invalid_proof');
          throwsCode(() => verifyConsistency(m, n, r1, r2, [...proof, Buffer.alloc(31)]), 'invalid_proof');
        }),
        { numRuns: 80 },
      );
    });
  });

  describe('RFC 9162 edge cases', () => {
    const ref = ReferenceTree.fromEntries(CT_LEAVES);
    const h = (s: string) => sha(Buffer.from(s));

    it('inclusion: index ≥ size and size 0 are out_of_range; planners agree', () => {
      throwsCode(() => verifyInclusion(0, 0, h('a'), [], EMPTY_ROOT), 'out_of_range');
      throwsCode(() => verifyInclusion(1, 1, h('a'), [], h('a')), 'out_of_range');
      throwsCode(() => verifyInclusion(-1, 8, h('a'), [], h('a')), 'out_of_range');
      throwsCode(() => verifyInclusion(1.5, 8, h('a'), [], h('a')), 'out_of_range');
      throwsCode(() => rootFromInclusionProof(8, 8, h('a'), []), 'out_of_range');
      throwsCode(() => planInclusionProof(0, 0), 'out_of_range');
      throwsCode(() => planInclusionProof(3, 3), 'out_of_range');
      throwsCode(() => planInclusionProof(0, 2 ** 53), 'out_of_range');
    });

    it('inclusion: single-leaf tree has an empty proof and root = leaf hash; bad hash lengths are invalid_proof', () => {
      const leaf = h('leaf');
      verifyInclusion(0, 1, leaf, [], leaf);
      assert.deepEqual(planInclusionProof(0, 1), []);
      throwsCode(() => verifyInclusion(0, 1, leaf, [], Buffer.alloc(0)), 'invalid_proof');
      throwsCode(() => verifyInclusion(0, 1, Buffer.alloc(0), [], leaf), 'invalid_proof');
      throwsCode(() => verifyInclusion(0, 1, leaf, [leaf], leaf), 'invalid_proof');
      throwsCode(() => verifyInclusion(0, 8, ref.leafHashes[0]!, [], ref.root(8)), 'invalid_proof');
      throwsCode(() => verifyInclusion(0, 8, leaf, Array.from({ length: 100_000 }, () => leaf), leaf), 'invalid_proof');
      throwsCode(() => verifyConsistency(1, 8, leaf, leaf, Array.from({ length: 100_000 }, () => leaf)), 'invalid_proof');
    });

    it('consistency: equal sizes need an empty proof and equal roots; from 0 only the empty proof', () => {
      const r = ref.root(5);
      verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []);
      verifyConsistency(5, 5, r, r, []);
      verifyConsistency(0, 5, EMPTY_ROOT, r, []);
      throwsCode(() => verifyConsistency(0, 0, EMPTY_ROOT, r, []), 'invalid_proof');
      throwsCode(() => verifyConsistency(5, 5, r, ref.root(4), []), 'invalid_proof');
      throwsCode(() => verifyConsistency(5, 5, r, r, [r]), 'invalid_proof');
      throwsCode(() => verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]), 'invalid_proof');
      throwsCode(() => verifyConsistency(0, 5, EMPTY_ROOT, r, [EMPTY_ROOT]), 'invalid_proof');
      throwsCode(() => verifyConsistency(1, 2, ref.root(1), ref.root(2), []), 'invalid_proof');
      throwsCode(() => verifyConsistency(6, 5, ref.root(6), r, []), 'out_of_range');
      throwsCode(() => verifyConsistency(-1, 5, EMPTY_ROOT, r, []), 'out_of_range');
      throwsCode(() => verifyConsistency(1, 2 ** 53, r, r, [r]), 'out_of_range');
      throwsCode(() => planConsistencyProof(0, 5), 'out_of_range');
      throwsCode(() => planConsistencyProof(6, 5), 'out_of_range');
      assert.deepEqual(planConsistencyProof(5, 5), []);
    });
  });

  describe('huge trees (sizes up to 2^53 − 1, no 32-bit arithmetic)', () => {
    // A tree whose leaves are all equal: the hash of a complete subtree depends only on its level, so real RFC 6962
    // proofs of astronomically large trees can be computed exactly.
    const perfect = perfectHashes(sha(Buffer.from('same leaf')), 54);
    const getNode = (n: NodeId) => perfect[n.level]!;
    const rootOf = (n: number) => hashRanges([planRoot(n)], getNode)[0]!;
    const sizes = fc.oneof(
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 32, max: 53 }).map((k) => 2 ** k - 1),
      fc.integer({ min: 32, max: 52 }).map((k) => 2 ** k),
      fc.integer({ min: 32, max: 52 }).map((k) => 2 ** k + 1),
    );

    it('planned inclusion proofs verify and have the right length', () => {
      fc.assert(
        fc.property(sizes, fc.double({ min: 0, max: 1, noNaN: true }), (n, f) => {
          const i = Math.min(n - 1, Math.floor(f * n));
          const proof = hashRanges(planInclusionProof(i, n), getNode);
          assert.ok(proof.length <= 53);
          verifyInclusion(i, n, perfect[0]!, proof, rootOf(n));
          if (proof.length > 0) throwsCode(() => verifyInclusion(i, n, perfect[0]!, proof.slice(1), rootOf(n)), 'invalid_proof');
          throwsCode(() => verifyInclusion(i, n, perfect[0]!, [...proof, perfect[0]!], rootOf(n)), 'invalid_proof');
        }),
        { numRuns: 150 },
      );
    });

    it('planned consistency proofs verify', () => {
      fc.assert(
        fc.property(sizes, sizes, (a, b) => {
          const [m, n] = a <= b ? [a, b] : [b, a];
          const proof = hashRanges(planConsistencyProof(m, n), getNode);
          verifyConsistency(m, n, rootOf(m), rootOf(n), proof);
          if (proof.length > 0) throwsCode(() => verifyConsistency(m, n, rootOf(m), rootOf(n), proof.slice(0, -1)), 'invalid_proof');
        }),
        { numRuns: 150 },
      );
    });
  });
});
