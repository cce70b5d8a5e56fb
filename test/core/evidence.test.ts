import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FakeLog } from '../witness/fake-log.ts';
import {
  buildEvidence,
  classifyEvidenceProof,
  formatEvidence,
  parseEvidence,
  rootsFromEvidenceProof,
  verifyEvidence,
  EVIDENCE_FORMAT,
} from '../../core/evidence.ts';
import { parseVerifierKey } from '../../core/note.ts';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { isPkglogError } from '../../core/errors.ts';

const honest = new FakeLog('example.com/evidence').append(300);
const verifier = parseVerifierKey(honest.vkey);
const cpOf = (note: string) => parseCheckpoint(parseSignedNote(note).text);

function throwsCode(fn: () => unknown, code: string, re?: RegExp): void {
  assert.throws(fn, (e: unknown) => isPkglogError(e) && e.code === code && (re === undefined || re.test(e.message)));
}

describe('core/evidence', () => {
  describe('same tree size', () => {
    const forked = honest.fork(100, 50); // size 150
    const ev = buildEvidence(honest.checkpoint(150), forked.checkpoint(150));

    it('two roots for one size verify as a fork', () => {
      const s = verifyEvidence(ev, verifier);
      assert.equal(s.kind, 'same-size');
      assert.deepEqual(s.sizes, [150, 150]);
      assert.match(s.description, /two different roots for tree size 150/);
    });

    it('round-trips through the canonical text format, in either argument order', () => {
      const text = formatEvidence(ev);
      assert.equal(formatEvidence(parseEvidence(text)), text);
      assert.equal(formatEvidence(buildEvidence(forked.checkpoint(150), honest.checkpoint(150))), text);
      assert.equal(JSON.parse(text).format, EVIDENCE_FORMAT);
    });

    it('the same checkpoint twice is not a fork', () => {
      throwsCode(() => verifyEvidence(buildEvidence(honest.checkpoint(150), honest.checkpoint(150)), verifier), 'invalid_proof', /not a fork/);
    });

    it('rejects another key, and tampered checkpoints', () => {
      const other = parseVerifierKey(new FakeLog('example.com/evidence', 'someone else').vkey);
      throwsCode(() => verifyEvidence(ev, other), 'unknown_key');
      const obj = JSON.parse(formatEvidence(ev));
      const root = cpOf(obj.checkpoints[1]).rootHash.toString('base64');
      obj.checkpoints[1] = obj.checkpoints[1].replace(root, Buffer.alloc(32, 0xff).toString('base64'));
      throwsCode(() => verifyEvidence(parseEvidence(JSON.stringify(obj)), verifier), 'bad_signature');
    });
  });

  describe('different tree sizes', () => {
    it('a proof from the larger tree implying another smaller root verifies (both directions of the fork)', () => {
      const forked = honest.fork(40, 100); // size 140
      // smaller = forked@100 (diverged at 40), larger = honest@300
      const e1 = buildEvidence(forked.checkpoint(100), honest.checkpoint(300), honest.evidenceProof(100, 300));
      assert.equal(verifyEvidence(parseEvidence(formatEvidence(e1)), verifier).kind, 'inconsistent');
      // smaller = honest@64 (a power of two: the proof carries the subtree hash), larger = forked@140
      const e2 = buildEvidence(honest.checkpoint(64), forked.checkpoint(140), forked.evidenceProof(64, 140));
      const s = verifyEvidence(e2, verifier);
      assert.deepEqual(s.sizes, [64, 140]);
      assert.match(s.description, /contains a size-64 prefix/);
    });

    it('consistent checkpoints are not a fork; proofs not matching the larger root are rejected', () => {
      const e = buildEvidence(honest.checkpoint(100), honest.checkpoint(300), honest.evidenceProof(100, 300));
      throwsCode(() => verifyEvidence(e, verifier), 'invalid_proof', /prefix/);
      const forked = honest.fork(40, 100);
      // A proof taken from the WRONG tree (the smaller's) does not hash to the larger root.
      const bad = buildEvidence(forked.checkpoint(100), honest.checkpoint(300), forked.evidenceProof(100, 140));
      throwsCode(() => verifyEvidence(bad, verifier), 'invalid_proof');
      const tampered = buildEvidence(forked.checkpoint(100), honest.checkpoint(300), honest.evidenceProof(100, 300).map((h, i) => (i === 1 ? Buffer.alloc(32) : h)));
      throwsCode(() => verifyEvidence(tampered, verifier), 'invalid_proof');
      const short = buildEvidence(forked.checkpoint(100), honest.checkpoint(300), honest.evidenceProof(100, 300).slice(1));
      throwsCode(() => verifyEvidence(short, verifier), 'invalid_proof');
    });

    it('property: for every 0 < m < n, evidence proofs classify honest pairs as consistent and forks as forks', () => {
      const forked = honest.fork(30, 200); // size 230, diverges after leaf 30
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 229 }), fc.integer({ min: 2, max: 230 }), (a, b) => {
          const m = Math.min(a, b);
          const n = Math.max(a, b);
          if (m === n) return;
          const proof = honest.evidenceProof(m, n);
          const roots = rootsFromEvidenceProof(m, n, proof);
          assert.ok(roots.oldRoot.equals(honest.rootAt(m)) && roots.newRoot.equals(honest.rootAt(n)));
          const smallerFork = cpOf(forked.checkpoint(m));
          const expect = m <= 30 ? 'consistent' : 'fork';
          assert.equal(classifyEvidenceProof(smallerFork, cpOf(honest.checkpoint(n)), proof), expect);
          if (expect === 'fork') verifyEvidence(buildEvidence(forked.checkpoint(m), honest.checkpoint(n), proof), verifier);
        }),
        { numRuns: 150 },
      );
    });
  });

  describe('parseEvidence is strict', () => {
    const forked = honest.fork(10, 20);
    const good = JSON.parse(formatEvidence(buildEvidence(honest.checkpoint(30), forked.checkpoint(30))));
    const cases: Array<[string, unknown]> = [
      ['not JSON', '{'],
      ['an array', '[]'],
      ['an extra key', { ...good, extra: 1 }],
      ['a missing key', { format: good.format, origin: good.origin, checkpoints: good.checkpoints }],
      ['another format', { ...good, format: 'pkglog-fork-evidence/v2' }],
      ['one checkpoint', { ...good, checkpoints: [good.checkpoints[0]] }],
      ['non-canonical order', { ...good, checkpoints: [good.checkpoints[1], good.checkpoints[0]] }],
      ['another origin', { ...good, origin: 'example.com/other' }],
      ['a proof hash of 31 bytes', { ...good, proof: [Buffer.alloc(31).toString('base64')] }],
      ['a non-base64 proof', { ...good, proof: ['!!'] }],
      ['a checkpoint that is not a note', { ...good, checkpoints: ['hello', good.checkpoints[1]] }],
    ];
    for (const [name, value] of cases) {
      it(`rejects ${name}`, () => {
        throwsCode(() => parseEvidence(typeof value === 'string' ? value : JSON.stringify(value)), 'malformed');
      });
    }
    it('rejects a non-empty proof for equal sizes at verification', () => {
      throwsCode(() => verifyEvidence(parseEvidence(JSON.stringify({ ...good, proof: [Buffer.alloc(32).toString('base64')] })), verifier), 'malformed');
    });
  });
});
