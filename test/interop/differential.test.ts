/**
 * Differential properties: pkglog's core/ against the independent checker on random inputs (fast-check).
 * Where they disagree, the spec decides (see the report of the interop cross-check).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as I from './independent.ts';
import { formatTilePath, parseTilePath, tileWidth, parseEntryBundle, formatEntryBundle } from '../../core/tiles.ts';
import { cosignatureMessage } from '../../core/cosignature.ts';
import { formatAddCheckpointRequest, parseAddCheckpointRequest } from '../../core/witness-protocol.ts';
import { formatCheckpoint, parseCheckpoint } from '../../core/checkpoint.ts';
import { formatTlogProof, parseTlogProof } from '../../core/tlog-proof.ts';
import { verifyConsistency, verifyInclusion } from '../../core/merkle.ts';
import { keyId, parseVerifierKey, verifyNote } from '../../core/note.ts';

const accepts = (f: () => unknown): boolean => {
  try {
    f();
    return true;
  } catch {
    return false;
  }
};

const hash = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a));

describe('interop: core/ vs the independent checker (random inputs)', () => {
  it('tile paths: same string, and core parses what the independent code formats', () => {
    fc.assert(fc.property(
      fc.oneof(fc.integer({ min: 0, max: 63 }), fc.constant('entries' as const)),
      fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 2 ** 40 })),
      fc.integer({ min: 1, max: 256 }),
      (level, index, width) => {
        const mine = I.tilePath(level, index, width);
        const tile = { level: level === 'entries' ? -1 : level, index, width };
        assert.equal(formatTilePath(tile), mine);
        assert.deepEqual(parseTilePath(mine), tile);
      },
    ), { numRuns: 2000 });
  });

  it('tile widths: core tileWidth = 256 for full tiles, floor(s/256^L) mod 256 for the partial one, 0 beyond', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 2 ** 36 }), (level, index, size) => {
      const full = I.fullTiles(level, size);
      const want = index < full ? 256 : index === full ? I.partialWidth(level, size) : 0;
      assert.equal(tileWidth(level, index, size), want);
    }), { numRuns: 2000 });
  });

  it('entry bundles: same bytes both ways', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 20 }), (entries) => {
      const b = formatEntryBundle(entries);
      assert.deepEqual(I.parseBundle(b).map((x) => x.toString('hex')), entries.map((e) => Buffer.from(e).toString('hex')));
      assert.deepEqual(parseEntryBundle(b).map((x) => x.toString('hex')), entries.map((e) => Buffer.from(e).toString('hex')));
    }));
  });

  it('cosignature/v1 message: same bytes', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 40 }), hash, (ts, size, root) => {
      const text = `example.com/log\n${size}\n${I.b64(root)}\n`;
      assert.ok(cosignatureMessage(text, ts).equals(I.cosignatureV1Message(Buffer.from(text), ts)));
    }));
  });

  it('key IDs: same 4 bytes for both types', () => {
    fc.assert(fc.property(fc.stringMatching(/^[a-z0-9./-]{1,40}$/), hash, fc.constantFrom(1, 4), (name, pub, type) => {
      assert.ok(keyId(name, type, pub).equals(I.computeKeyId(name, type, pub)));
    }));
  });

  it('add-checkpoint bodies: same bytes, and core parses the independent body back', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.array(hash, { maxLength: 63 }), (old, proof) => {
      const note = Buffer.from(`o\n1\n${I.b64(Buffer.alloc(32))}\n\n— o AAAAAAA=\n`);
      const mine = I.addCheckpointBody(old, proof, note);
      assert.ok(formatAddCheckpointRequest({ oldSize: old, consistencyProof: proof, checkpoint: note }).equals(mine));
      const back = parseAddCheckpointRequest(mine);
      assert.equal(back.oldSize, old);
      assert.deepEqual(back.consistencyProof.map(I.b64), proof.map(I.b64));
      assert.ok(back.checkpoint.equals(note));
    }), { numRuns: 300 });
  });

  it('checkpoint bodies: both accept and re-format the same texts, and both reject the same mutations', () => {
    const valid = fc.record({
      origin: fc.stringMatching(/^[a-z0-9./-]{1,30}$/),
      size: fc.integer({ min: 0, max: 2 ** 50 }),
      root: hash,
      ext: fc.array(fc.stringMatching(/^[ -~]{1,20}$/), { maxLength: 3 }),
    });
    fc.assert(fc.property(valid, ({ origin, size, root, ext }) => {
      const text = I.formatCheckpointText({ origin, size, root, extensions: ext });
      const c = parseCheckpoint(text);
      assert.equal(formatCheckpoint(c), text);
      assert.deepEqual(I.parseCheckpointText(text).extensions, c.extensions);
    }), { numRuns: 500 });
    const r = I.b64(Buffer.alloc(32, 1));
    const bad = [
      `o\n01\n${r}\n`, `o\n+1\n${r}\n`, `o\n-0\n${r}\n`, `o\n1 \n${r}\n`, `o\n1\n${r}`, `o\n1\n${r}\n\n`, `o\n1\n${r}\n\next\n`,
      `\n1\n${r}\n`, `o\n1\n${I.b64(Buffer.alloc(31))}\n`, `o\n1\n${r.slice(0, -1)}\n`, `o\n1\n`, `o\n0x1\n${r}\n`,
      `o\n1\n${r.slice(0, 42)}B=\n`, // non-canonical base64 (non-zero padding bits)
    ];
    const disagreements = bad.filter((t) => accepts(() => parseCheckpoint(t)) || accepts(() => I.parseCheckpointText(t)));
    assert.deepEqual(disagreements, []);
  });

  it('tlog-proof files: core formats what the independent parser reads, and parses back', () => {
    const cp = `o\n5\n${I.b64(Buffer.alloc(32))}\n\n— o ${I.b64(Buffer.alloc(68))}\n`;
    fc.assert(fc.property(fc.option(fc.uint8Array({ minLength: 1, maxLength: 100 }), { nil: undefined }), fc.integer({ min: 0, max: 2 ** 40 }), fc.array(hash, { maxLength: 63 }), (extra, index, proof) => {
      const text = formatTlogProof({ ...(extra ? { extra: Buffer.from(extra) } : {}), index, inclusionProof: proof, checkpoint: cp });
      const mine = I.parseTlogProofFile(text);
      assert.equal(mine.index, index);
      assert.equal(mine.extra?.toString('hex'), extra ? Buffer.from(extra).toString('hex') : undefined);
      assert.deepEqual(mine.proof.map(I.b64), proof.map(I.b64));
      assert.equal(mine.checkpoint.toString(), cp);
      const back = parseTlogProof(text);
      assert.equal(back.index, index);
    }), { numRuns: 300 });
  });

  it('inclusion and consistency proofs: core (RFC 9162 loop) and the independent RFC 6962 recursion agree on valid and mutated proofs', () => {
    const leaves = Array.from({ length: 300 }, (_, i) => I.leafHash(Buffer.from(`d${i}`)));
    const t = new I.HashTree(leaves);
    const mutate = (p: Buffer[], k: number): Buffer[] => {
      if (p.length === 0) return [I.sha256(Buffer.from('x'))];
      switch (k % 4) {
        case 0: return p.map((h, i) => (i === k % p.length ? I.sha256(h) : h));
        case 1: return p.slice(0, -1);
        case 2: return [...p, p[0]!];
        default: return [...p].reverse();
      }
    };
    fc.assert(fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 299 }), fc.nat(), fc.boolean(), (n, m0, k, doMutate) => {
      const m = m0 % n;
      let p = t.inclusionPath(m, n);
      if (doMutate) p = mutate(p, k);
      const mine = I.verifyInclusion(leaves[m]!, m, n, p, t.root(n));
      const core = accepts(() => verifyInclusion(m, n, leaves[m]!, p, t.root(n)));
      assert.equal(core, mine, `inclusion ${m}/${n} mutated=${doMutate}`);
      if (!doMutate) assert.ok(mine);
      const old = m + 1;
      let c = t.consistencyProof(old, n);
      if (doMutate) c = mutate(c, k);
      const mineC = I.verifyConsistency(old, n, t.root(old), t.root(n), c);
      const coreC = accepts(() => verifyConsistency(old, n, t.root(old), t.root(n), c));
      assert.equal(coreC, mineC, `consistency ${old}→${n} mutated=${doMutate}`);
      if (!doMutate) assert.ok(mineC);
    }), { numRuns: 1500 });
  });

  it('inclusion and consistency proofs: core and the independent recursion agree when sizes, indexes and roots are wrong', () => {
    const leaves = Array.from({ length: 300 }, (_, i) => I.leafHash(Buffer.from(`e${i}`)));
    const t = new I.HashTree(leaves);
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 299 }), fc.integer({ min: -2, max: 2 }), fc.integer({ min: -2, max: 2 }), fc.boolean(),
      (n, m0, dm, dn, swapRoots) => {
        const m = m0 % n;
        // A valid proof for (m, n), checked as a proof for (m + dm, n + dn), possibly against the wrong roots.
        const [cm, cn] = [m + dm, n + dn];
        const root = (s: number) => (s >= 0 && s <= 300 ? t.root(s) : I.sha256(Buffer.from(`no tree of ${s}`)));
        const p = t.inclusionPath(m, n);
        const mine = I.verifyInclusion(leaves[m]!, cm, cn, p, swapRoots ? root(cn - 1) : root(cn));
        const core = accepts(() => verifyInclusion(cm, cn, leaves[m]!, p, swapRoots ? root(cn - 1) : root(cn)));
        assert.equal(core, mine, `inclusion of ${m}/${n} as ${cm}/${cn} swap=${swapRoots}`);
        const old = m + 1;
        const c = t.consistencyProof(old, n);
        const [co, cs] = [old + dm, n + dn];
        const [ro, rn] = swapRoots ? [root(cs), root(co)] : [root(co), root(cs)];
        const mineC = I.verifyConsistency(co, cs, ro, rn, c);
        const coreC = accepts(() => verifyConsistency(co, cs, ro, rn, c));
        // RFC 6962 defines PROOF(m, D[n]) for 0 < m only; core also accepts an empty proof from the empty tree (tlog-witness "old 0").
        if (co >= 1) assert.equal(coreC, mineC, `consistency ${old}→${n} as ${co}→${cs} swap=${swapRoots}`);
        else assert.equal(mineC, false);
        if (dm === 0 && dn === 0 && !swapRoots) assert.ok(mine && mineC);
      },
    ), { numRuns: 1500 });
  });

  it('signed notes: core verifyNote and the independent openNote accept/reject the same mutated Go vector notes', () => {
    const vkey = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
    const note = Buffer.from("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n");
    const extra = Buffer.from("— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n");
    const interesting = [0x0a, 0x0d, 0x20, 0x09, 0x2b, 0x3d, 0x00, 0xe2, 0x80, 0x94, 0xa0, 0xff, 0x41, 0x2f];
    const indep = I.parseVKey(vkey);
    const core = parseVerifierKey(vkey);
    fc.assert(fc.property(
      fc.integer({ min: 0, max: note.length + extra.length }), fc.constantFrom(...interesting), fc.constantFrom('replace', 'insert', 'delete'), fc.boolean(),
      (pos, byte, op, withExtra) => {
        const base = withExtra ? Buffer.concat([note, extra]) : note;
        const p = pos % (base.length + 1);
        let m: Buffer;
        if (op === 'insert') m = Buffer.concat([base.subarray(0, p), Buffer.from([byte]), base.subarray(p)]);
        else if (op === 'delete') m = Buffer.concat([base.subarray(0, p), base.subarray(p + 1)]);
        else m = Buffer.concat([base.subarray(0, p), Buffer.from([byte]), base.subarray(p + 1)]);
        const a = accepts(() => I.openNote(m, [indep]));
        const b = accepts(() => verifyNote(m, [core]));
        assert.equal(b, a, `core ${b} vs independent ${a} on ${JSON.stringify(m.toString('latin1'))}`);
      },
    ), { numRuns: 800 });
  });
});
