/**
 * core/index-evidence.ts: the compact range equals the RFC 6962 reference for every size, and index evidence is
 * valid exactly for a wrong map root (an honest revision is "not a mismatch"; a changed leaf, a missing leaf, another
 * key, a non-canonical file are refused).
 */
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { CompactRange, formatIndexEvidence, parseIndexEvidence, verifyIndexEvidence, type IndexEvidence } from '../../core/index-evidence.ts';
import { leafHash } from '../../core/hash.ts';
import { parseVerifierKey } from '../../core/note.ts';
import { isPkglogError } from '../../core/errors.ts';
import { ReferenceTree } from '../support/reference-tree.ts';
import { IndexDouble, OUTPUT_VKEY, INPUT_VKEY } from '../support/index-double.ts';

describe('core/index-evidence.ts', () => {
  it('CompactRange: the root of every prefix is the reference MTH', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 80 }), (leaves) => {
        const ref = ReferenceTree.fromEntries(leaves);
        const r = new CompactRange();
        assert.ok(r.root().equals(ref.root(0)));
        leaves.forEach((l, i) => {
          r.push(leafHash(l));
          assert.ok(r.root().equals(ref.root(i + 1)), `size ${i + 1}`);
        });
      }),
    );
  });

  const dbl = new IndexDouble();
  dbl.addBatch([{ name: 'a', version: '1', filename: 'a-1.tar.gz', publisher: 1 }, { name: 'b', version: '1', filename: 'b-1.tar.gz', publisher: 2 }]);
  dbl.addBatch([{ name: 'a', version: '2', filename: 'a-2.tar.gz', publisher: 1 }]);
  const key = parseVerifierKey(OUTPUT_VKEY);
  const evidenceFor = (r: number): IndexEvidence => {
    const f = dbl.fixture as unknown as { revisionLeaves: Buffer[] };
    const size = dbl.fixture.outputSize;
    const b = dbl.fixture.bundle({ kind: 'package', ecosystem: 'pypi', name: 'a' }, { revision: r, page: 0 }, size);
    return { origin: 'example.com/pkglog/index', checkpoint: b.checkpoint, revisionLeaf: f.revisionLeaves[r]!, revisionProof: b.revisionProof, leaves: dbl.fixture.leaves.slice(0, dbl.fixture.index.revisions[r]!.inputTreeSize) };
  };
  const code = (f: () => unknown): string => {
    try {
      f();
      return 'ok';
    } catch (e) {
      if (!isPkglogError(e)) throw e;
      return e.code;
    }
  };

  it('an honest revision is not a mismatch; a wrong map root is, and round-trips through its canonical text', () => {
    assert.equal(code(() => verifyIndexEvidence(evidenceFor(1), key)), 'invalid_proof');
    assert.match(String((() => { try { verifyIndexEvidence(evidenceFor(1), key); } catch (e) { return (e as Error).message; } })()), /not a mismatch/);
    dbl.corruptRevision(1);
    const ev = evidenceFor(1);
    const text = formatIndexEvidence(ev);
    const summary = verifyIndexEvidence(parseIndexEvidence(text), key);
    assert.equal(summary.revision.revision, 1);
    assert.ok(summary.rebuiltMapRoot.equals(dbl.fixture.index.revisions[1]!.mapRoot));
    assert.equal(formatIndexEvidence(parseIndexEvidence(text)), text);
    // Tampering.
    const flipped = Buffer.from(ev.leaves[0]!);
    flipped[flipped.length - 1]! ^= 1;
    assert.equal(code(() => verifyIndexEvidence({ ...ev, leaves: [flipped, ...ev.leaves.slice(1)] }, key)), 'invalid_proof');
    assert.equal(code(() => verifyIndexEvidence({ ...ev, leaves: ev.leaves.slice(0, -1) }, key)), 'invalid_proof');
    assert.equal(code(() => verifyIndexEvidence(ev, parseVerifierKey(INPUT_VKEY))), 'unknown_key');
    assert.equal(code(() => verifyIndexEvidence({ ...ev, revisionProof: [] }, key)), 'invalid_proof');
    assert.equal(code(() => parseIndexEvidence(text.replace('"leaves"', '"leaves2"'))), 'malformed');
    assert.equal(code(() => parseIndexEvidence(JSON.stringify({ ...JSON.parse(text), extra: 1 }))), 'malformed');
  });
});
