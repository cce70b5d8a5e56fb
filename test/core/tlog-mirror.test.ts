/**
 * core/tlog-mirror.ts: subtree consistency proofs against a naive reading of the MTC draft's recursive definition
 * (SUBTREE_SUBPROOF over test/support/reference-tree.ts), the verifier accepting every honest proof and refusing
 * every altered one, and the add-entries framing (header, canonical package sequence, mirror-info).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hashRanges } from '../../core/merkle.ts';
import {
  formatAddEntriesHeader,
  formatMirrorInfo,
  isValidSubtree,
  listHash,
  packageCount,
  packageRange,
  parseAddEntriesHeader,
  parseMirrorInfo,
  planSubtreeConsistencyProof,
  verifySubtreeConsistency,
} from '../../core/tlog-mirror.ts';
import { isPkglogError } from '../../core/errors.ts';
import { ReferenceTree, refLeafHash } from '../support/reference-tree.ts';

function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

/** SUBTREE_SUBPROOF(start, end, D[lo:hi], known), written from the draft's text (start/end relative to lo). */
function naiveSubproof(t: ReferenceTree, start: number, end: number, lo: number, hi: number, known: boolean): Buffer[] {
  const n = hi - lo;
  if (start === 0 && end === n) return known ? [] : [t.mth(lo, hi)];
  const split = k(n);
  if (end <= split) return [...naiveSubproof(t, start, end, lo, lo + split, known), t.mth(lo + split, hi)];
  if (split <= start) return [...naiveSubproof(t, start - split, end - split, lo + split, hi, known), t.mth(lo, lo + split)];
  return [...naiveSubproof(t, 0, end - split, lo + split, hi, false), t.mth(lo, lo + split)];
}

const tree = ReferenceTree.fromEntries(Array.from({ length: 300 }, (_, i) => Buffer.from(`entry ${i}`)));
const getNode = (n: { level: number; index: number }) => tree.mth(n.index * 2 ** n.level, (n.index + 1) * 2 ** n.level);

describe('core/tlog-mirror: subtree consistency proofs', () => {
  it('valid subtrees are exactly those whose start is a multiple of BIT_CEIL(end - start)', () => {
    assert.ok(isValidSubtree(0, 5) && isValidSubtree(8, 13) && isValidSubtree(256, 512) && isValidSubtree(4, 6));
    assert.ok(!isValidSubtree(4, 9) && !isValidSubtree(1, 3) && !isValidSubtree(3, 3) && !isValidSubtree(5, 4));
  });

  it('every proof equals the naive definition and verifies; sizes 1…70, every valid subtree', () => {
    for (let n = 1; n <= 70; n++) {
      for (let start = 0; start < n; start++) {
        for (let end = start + 1; end <= n; end++) {
          if (!isValidSubtree(start, end)) continue;
          const proof = hashRanges(planSubtreeConsistencyProof(start, end, n), getNode);
          assert.deepEqual(proof.map((h) => h.toString('hex')), naiveSubproof(tree, start, end, 0, n, true).map((h) => h.toString('hex')), `[${start}, ${end}) of ${n}`);
          verifySubtreeConsistency(start, end, n, proof, tree.mth(start, end), tree.root(n));
        }
      }
    }
  });

  it('refuses a wrong subtree hash, a wrong root, a changed, dropped or extra proof hash (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), fc.nat(), (n, a, b, pick) => {
        // A random valid subtree of the tree of size n: an aligned block of size 2^j, cut at a random end.
        const j = a % (Math.floor(Math.log2(n)) + 1);
        const size = 2 ** j;
        const start = (b % Math.ceil(n / size)) * size;
        const end = Math.min(n, start + 1 + (pick % size));
        fc.pre(isValidSubtree(start, end));
        const proof = hashRanges(planSubtreeConsistencyProof(start, end, n), getNode);
        const sub = tree.mth(start, end);
        verifySubtreeConsistency(start, end, n, proof, sub, tree.root(n));
        const bad = (p: Buffer[], s = sub, r = tree.root(n)) =>
          assert.throws(() => verifySubtreeConsistency(start, end, n, p, s, r), (e: unknown) => isPkglogError(e, 'invalid_proof'));
        bad(proof, refLeafHash(Buffer.from('not the subtree')));
        bad(proof, sub, refLeafHash(Buffer.from('not the root')));
        bad([...proof, sub]);
        if (proof.length > 0) {
          const i = pick % proof.length;
          const changed = proof.map((h, x) => (x === i ? refLeafHash(h) : h));
          bad(changed);
          bad(proof.slice(0, -1));
        }
      }),
    );
  });

  it('listHash is the RFC 6962 hash of the list', () => {
    for (const n of [0, 1, 2, 3, 7, 8, 9, 200, 256]) assert.equal(listHash(tree.leafHashes.slice(0, n)).toString('hex'), tree.mth(0, n).toString('hex'));
  });
});

describe('core/tlog-mirror: add-entries framing', () => {
  it('the canonical sequence is aligned at 256 and covers [upload_start, upload_end) once', () => {
    assert.equal(packageCount(5, 5), 0);
    assert.equal(packageCount(0, 1), 1);
    assert.equal(packageCount(255, 257), 2);
    assert.deepEqual(packageRange(300, 1000, 0), { subtreeStart: 256, start: 300, end: 512 });
    assert.deepEqual(packageRange(300, 1000, 2), { subtreeStart: 768, start: 768, end: 1000 });
    fc.assert(
      fc.property(fc.nat(5000), fc.nat(5000), (x, y) => {
        const [s, e] = x <= y ? [x, y] : [y, x];
        let at = s;
        for (let i = 0; i < packageCount(s, e); i++) {
          const p = packageRange(s, e, i);
          assert.equal(p.start, at);
          assert.ok(p.end > p.start && p.subtreeStart % 256 === 0 && p.end - p.subtreeStart <= 256 && isValidSubtree(p.subtreeStart, p.end));
          at = p.end;
        }
        assert.equal(at, e);
      }),
    );
  });

  it('header round-trips; a short buffer asks for more; bad values are malformed', () => {
    const h = { origin: 'example.com/log', uploadStart: 10, uploadEnd: 2 ** 40, ticket: Buffer.from('t') };
    const b = formatAddEntriesHeader(h);
    assert.deepEqual(parseAddEntriesHeader(Buffer.concat([b, Buffer.from('rest')])), { header: h, length: b.length });
    for (let i = 0; i < b.length; i++) assert.equal(parseAddEntriesHeader(b.subarray(0, i)), undefined);
    const swapped = formatAddEntriesHeader({ ...h, uploadStart: 0, uploadEnd: 0 });
    swapped.writeBigUInt64BE(5n, 2 + 15);
    assert.throws(() => parseAddEntriesHeader(swapped), (e: unknown) => isPkglogError(e, 'malformed'));
  });

  it('mirror-info is three newline-terminated lines', () => {
    const text = formatMirrorInfo({ treeSize: 12, nextEntry: 7, ticket: Buffer.alloc(0) });
    assert.equal(text, '12\n7\n\n');
    assert.deepEqual(parseMirrorInfo(text), { treeSize: 12, nextEntry: 7, ticket: Buffer.alloc(0) });
    assert.throws(() => parseMirrorInfo('12\n7\n'), (e: unknown) => isPkglogError(e, 'malformed'));
  });
});
