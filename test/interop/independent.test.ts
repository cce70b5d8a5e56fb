/**
 * Self-checks of the independent verifier (test/interop/independent.ts) against published vectors, and Go's
 * golang.org/x/mod sumdb/note test vectors run through BOTH the independent checker and pkglog's core/note.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { MerkleTree } from 'merkletreejs';
import * as I from './independent.ts';
import { parseSignerKey, parseVerifierKey, signNote, verifyNote } from '../../core/note.ts';
import { ENOCH_SIG, ENOCH_VKEY, PETER_SIG, PETER_SKEY, PETER_VKEY, TEXT } from '../vectors/go-note.ts';


/** Both implementations accept (true) or reject (false) the note with the given vkeys. */
function bothOpen(msg: string, vkeys: string[]): { independent: boolean; core: boolean } {
  let independent = true;
  let core = true;
  try {
    I.openNote(msg, vkeys.map(I.parseVKey));
  } catch {
    independent = false;
  }
  try {
    verifyNote(msg, vkeys.map(parseVerifierKey));
  } catch {
    core = false;
  }
  return { independent, core };
}

function bothParseVKey(k: string): { independent: boolean; core: boolean } {
  let independent = true;
  let core = true;
  try {
    I.parseVKey(k);
  } catch {
    independent = false;
  }
  try {
    parseVerifierKey(k);
  } catch {
    core = false;
  }
  return { independent, core };
}

describe('interop: independent checker vs Go sumdb/note vectors (and core/note.ts)', () => {
  it('parses the PeterNeumann and EnochRoot vkeys (both implementations)', () => {
    for (const k of [PETER_VKEY, ENOCH_VKEY]) {
      assert.deepEqual(bothParseVKey(k), { independent: true, core: true });
      const v = I.parseVKey(k);
      assert.equal(I.formatVKey(v.name, v.type, v.publicKey), k);
      assert.ok(parseVerifierKey(k).keyId.equals(v.keyId));
    }
    assert.equal(I.parseVKey(PETER_VKEY).keyId.toString('hex'), 'c74f20a3');
  });

  it('rejects every substring and every single-byte mangling of the vkey (Go TestNewVerifier), both implementations', () => {
    const b = Buffer.from(PETER_VKEY);
    const cases: string[] = [];
    for (let i = 0; i <= b.length; i++) for (let j = i + 1; j <= b.length; j++) if (i !== 0 || j !== b.length) cases.push(b.subarray(i, j).toString('latin1'));
    for (let i = 0; i < b.length; i++) {
      const c = Buffer.from(b);
      c[i]!++;
      cases.push(c.toString('latin1'));
    }
    cases.push('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==');
    cases.push('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
    const disagreements = cases.filter((k) => {
      const r = bothParseVKey(k);
      return r.independent || r.core;
    });
    assert.deepEqual(disagreements, []);
  });

  it('signs the Go TestSign note byte for byte (independent Ed25519 from the skey seed, and core signNote)', () => {
    const want = TEXT + '\n' + PETER_SIG;
    // independent: PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>
    const [, , name, hex, key64] = PETER_SKEY.split('+', 4).concat(PETER_SKEY.split('+').slice(4).join('+')) as string[];
    const raw = I.b64decode(key64!, 'skey');
    assert.equal(raw[0], 0x01);
    const seed = raw.subarray(1);
    const pub = ed.getPublicKey(seed);
    assert.equal(I.computeKeyId(name!, 0x01, pub).toString('hex'), hex);
    const sig = ed.sign(Buffer.from(TEXT), seed);
    const line = `— ${name} ${I.b64(Buffer.concat([Buffer.from(hex!, 'hex'), sig]))}\n`;
    assert.equal(TEXT + '\n' + line, want);
    // core
    assert.equal(signNote(TEXT, [parseSignerKey(PETER_SKEY)]), want);
  });

  it('opens the Go TestOpen notes the same way in both implementations', () => {
    const ok = { independent: true, core: true };
    const no = { independent: false, core: false };
    assert.deepEqual(bothOpen(TEXT + '\n' + PETER_SIG + ENOCH_SIG, [PETER_VKEY]), ok);
    assert.deepEqual(bothOpen(TEXT + '\n' + PETER_SIG + ENOCH_SIG, [PETER_VKEY, ENOCH_VKEY]), ok);
    assert.deepEqual(bothOpen(TEXT + '\n' + PETER_SIG + ENOCH_SIG, []), no);
    assert.deepEqual(bothOpen(TEXT + '\n' + ENOCH_SIG, [PETER_VKEY]), no);
    // invalid signature from a known key
    assert.deepEqual(bothOpen(TEXT + '\n' + PETER_SIG.slice(0, 60) + 'ABCD' + PETER_SIG.slice(60), [PETER_VKEY]), no);
    // duplicated verified and unverified signatures (the ABCD-mangled Enoch line is unknown to a Peter-only verifier)
    const enochABCD = ENOCH_SIG.slice(0, 60) + 'ABCD' + ENOCH_SIG.slice(60);
    assert.deepEqual(bothOpen(TEXT + '\n' + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enochABCD, [PETER_VKEY]), ok);
    const n = I.openNote(TEXT + '\n' + PETER_SIG + ENOCH_SIG, [I.parseVKey(PETER_VKEY), I.parseVKey(ENOCH_VKEY)]);
    assert.equal(n.text.toString(), TEXT);
    assert.equal(n.verified.length, 2);
  });

  it('rejects the Go TestOpen malformed messages in both implementations', () => {
    const badMsgs = [
      TEXT,
      TEXT + '\n',
      TEXT + '\n' + PETER_SIG.slice(0, -1),
      '\x01' + TEXT + '\n' + PETER_SIG,
      TEXT + '\n' + '— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=',
      TEXT + '\n' + PETER_SIG + 'Unexpected line.\n',
    ];
    for (const m of badMsgs) assert.deepEqual(bothOpen(m, [PETER_VKEY]), { independent: false, core: false }, JSON.stringify(m));
    // "\xff" + text: invalid UTF-8 (bytes, not a JS string)
    const invalid = Buffer.concat([Buffer.from([0xff]), Buffer.from(TEXT + '\n' + PETER_SIG)]);
    assert.throws(() => I.openNote(invalid, [I.parseVKey(PETER_VKEY)]));
    assert.throws(() => verifyNote(invalid, [parseVerifierKey(PETER_VKEY)]));
  });

  it('accepts a note with 16 signatures, the known one last (signed-note: "MUST accept at least up to 16")', () => {
    const grease = Array.from({ length: 15 }, (_, i) => `— grease.example/${i} ${I.b64(createHash('sha256').update(String(i)).digest().subarray(0, 20))}\n`).join('');
    assert.deepEqual(bothOpen(TEXT + '\n' + grease + PETER_SIG, [PETER_VKEY]), { independent: true, core: true });
  });
});

describe('interop: independent checker self-checks', () => {
  const H = (hex: string) => Buffer.from(hex, 'hex');
  const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(H);

  it('RFC 6962 known answers (sizes 8 and 3) and the empty tree', () => {
    const t = new I.HashTree(LEAVES.map(I.leafHash));
    assert.equal(t.root(8).toString('hex'), '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
    assert.equal(t.root(3).toString('hex'), 'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77');
    assert.equal(t.root(0).toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('merkletreejs (pre-hashed leaves, hashLeaves:false, node H(0x01‖l‖r), no odd duplication) reproduces RFC 6962 roots for n ≥ 1', () => {
    const sha = (d: Buffer) => createHash('sha256').update(d).digest();
    const leaves = Array.from({ length: 600 }, (_, i) => I.leafHash(Buffer.from(`leaf ${i}`)));
    const t = new I.HashTree(leaves);
    const oracle = (n: number) =>
      new MerkleTree(leaves.slice(0, n), sha, {
        hashLeaves: false, duplicateOdd: false, sortPairs: false, sortLeaves: false, isBitcoinTree: false,
        concatenator: (xs: Buffer[]) => Buffer.concat([Buffer.from([0x01]), ...xs]),
      }).getRoot();
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 100, 255, 256, 257, 511, 512, 513, 600]) {
      assert.equal(oracle(n).toString('hex'), t.root(n).toString('hex'), `n=${n}`);
    }
    const kat = new MerkleTree(LEAVES.map(I.leafHash), sha, { hashLeaves: false, duplicateOdd: false, concatenator: (xs: Buffer[]) => Buffer.concat([Buffer.from([0x01]), ...xs]) });
    assert.equal(kat.getRoot().toString('hex'), '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
    // The claim does NOT extend to n = 0: merkletreejs gives an empty root, RFC 6962 gives SHA-256("").
    assert.equal(new MerkleTree([], sha, { hashLeaves: false }).getRoot().length, 0);
  });

  it('inclusion and consistency proofs (RFC 6962 PATH/PROOF) verify by recomputing roots along the RFC 6962 recursion, and tampering fails', () => {
    const leaves = Array.from({ length: 70 }, (_, i) => I.leafHash(Buffer.from([i])));
    const t = new I.HashTree(leaves);
    for (let n = 1; n <= 70; n++) {
      for (let m = 0; m < n; m++) {
        const p = t.inclusionPath(m, n);
        assert.ok(I.verifyInclusion(leaves[m]!, m, n, p, t.root(n)), `incl ${m}/${n}`);
        if (p.length > 0) assert.ok(!I.verifyInclusion(leaves[m]!, m, n, p.slice(1), t.root(n)));
        assert.ok(!I.verifyInclusion(leaves[(m + 1) % n]!, m, n, p, t.root(n)) || n === 1);
      }
      for (let m = 1; m <= n; m++) {
        const p = t.consistencyProof(m, n);
        assert.ok(I.verifyConsistency(m, n, t.root(m), t.root(n), p), `cons ${m}/${n}`);
        if (m < n) {
          const bad = p.map((x, i) => (i === p.length - 1 ? I.sha256(x) : x));
          assert.ok(!I.verifyConsistency(m, n, t.root(m), t.root(n), bad));
          assert.ok(!I.verifyConsistency(m, n, t.root(m), t.root(n), [...p, p[0]!]));
        }
      }
    }
  });

  it('tile paths and widths match the tlog-tiles examples', () => {
    assert.equal(I.formatIndex(5), '005');
    assert.equal(I.formatIndex(1000), 'x001/000');
    assert.equal(I.formatIndex(1234067), 'x001/x234/067');
    assert.equal(I.tilePath(0, 1234067), 'tile/0/x001/x234/067');
    assert.equal(I.tilePath('entries', 1, 5), 'tile/entries/001.p/5');
    // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0 tile of width 112,
    //  one full level 1 tile, one partial level 1 tile of width 17, and one partial level 2 tile of width 1."
    const t = I.tilesForSize(70000);
    assert.equal(t.filter((x) => x.level === 0 && x.width === 256).length, 273);
    assert.deepEqual(t.filter((x) => x.width < 256), [{ level: 0, index: 273, width: 112 }, { level: 1, index: 1, width: 17 }, { level: 2, index: 0, width: 1 }]);
    assert.equal(t.filter((x) => x.level === 1 && x.width === 256).length, 1);
    // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of width 1."
    assert.deepEqual(I.tilesForSize(256), [{ level: 0, index: 0, width: 256 }, { level: 1, index: 0, width: 1 }]);
    assert.deepEqual(I.tilesForSize(0), []);
  });

  it('rootFromTiles agrees with the plain MTH for many sizes', () => {
    const N = 70000;
    const leaves = Array.from({ length: N }, (_, i) => I.sha256(Buffer.from(String(i))));
    const t = new I.HashTree(leaves);
    for (const s of [1, 2, 255, 256, 257, 511, 512, 513, 65535, 65536, 65537, 70000]) {
      const get = (level: number, index: number, width: number) => {
        const span = 256 ** level;
        return Buffer.concat(Array.from({ length: width }, (_, i) => t.mth((index * 256 + i) * span, (index * 256 + i + 1) * span)));
      };
      assert.ok(I.rootFromTiles(s, get).equals(t.root(s)), `size ${s}`);
    }
  });

  it('cosignature/v1 message and signature layout round-trip with noble', () => {
    const seed = createHash('sha256').update('w').digest();
    const pub = ed.getPublicKey(seed);
    const text = Buffer.from('example.com/log\n1\n' + I.b64(Buffer.alloc(32)) + '\n');
    const ts = 1679315147;
    const msg = I.cosignatureV1Message(text, ts);
    assert.equal(msg.toString(), 'cosignature/v1\ntime 1679315147\nexample.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n');
    const id = I.computeKeyId('w.example', 0x04, pub);
    const line = `— w.example ${I.b64(Buffer.concat([id, Buffer.from('00000000' + (1679315147).toString(16).padStart(8, '0'), 'hex'), ed.sign(msg, seed)]))}`;
    const s = I.parseSigLine(Buffer.from(line));
    const r = I.verifySig({ name: 'w.example', keyId: id, type: 0x04, publicKey: Buffer.from(pub) }, text, s);
    assert.deepEqual(r, { ok: true, timestamp: ts });
  });
});
