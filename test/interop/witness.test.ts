/**
 * Drives the REAL witness (and a real log for checkpoints) with add-checkpoint requests built byte by byte by the
 * independent verifier, with consistency proofs computed from the log's tiles by the independent verifier, and checks
 * every answer (status, Content-Type, 409 body, cosignature lines, cosignature/v1 signatures, monitoring endpoint).
 * Also runs a log that pushes to the witness itself and checks the cosigned checkpoints it publishes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ed from '@noble/ed25519';
import * as I from './independent.ts';
import { startTestLog, removeDir, tempDir } from '../support/log-harness.ts';
import { submissionBody } from '../support/submissions.ts';
import { startWitness, type RunningWitness } from '../../witness/main.ts';

type Log = Awaited<ReturnType<typeof startTestLog>>;
const WITNESS_NAME = 'witness.interop.example/w1';
/** Errors the witnesses logged (a 5xx answer is logged here). */
const witnessErrors: string[] = [];

async function fetchBytes(url: string, init?: RequestInit): Promise<{ status: number; type: string | null; body: Buffer }> {
  const r = await fetch(url, init);
  return { status: r.status, type: r.headers.get('content-type'), body: Buffer.from(await r.arrayBuffer()) };
}

/** A Go-format note signer key: PRIVATE+KEY+<name>+<hex key ID>+<base64(type ‖ seed)>. */
function formatSignerKey(name: string, type: number, seed: Buffer): string {
  const pub = ed.getPublicKey(seed);
  return `PRIVATE+KEY+${name}+${I.computeKeyId(name, type, pub).toString('hex')}+${I.b64(Buffer.concat([Buffer.from([type]), seed]))}`;
}

function parseSignerKey(s: string): { name: string; seed: Buffer; type: number; pub: Buffer } {
  const m = /^PRIVATE\+KEY\+([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(s.trim());
  assert.ok(m, 'Go signer key format');
  const raw = I.b64decode(m[3]!, 'skey', 33);
  const pub = Buffer.from(ed.getPublicKey(raw.subarray(1)));
  assert.equal(I.computeKeyId(m[1]!, raw[0]!, pub).toString('hex'), m[2]);
  return { name: m[1]!, seed: raw.subarray(1), type: raw[0]!, pub };
}

/** Signs checkpoint text as the log would (independently, with noble). */
function signCheckpointText(text: string, key: { name: string; seed: Buffer; pub: Buffer }): string {
  const sig = ed.sign(Buffer.from(text), key.seed);
  return `${text}\n— ${key.name} ${I.b64(Buffer.concat([I.computeKeyId(key.name, 0x01, key.pub), sig]))}\n`;
}

describe('interop: the witness, driven by hand-built add-checkpoint requests', function () {
  this.timeout(30_000);
  let log: Log;
  let wdir: string;
  let w: RunningWitness;
  let logKey: I.VKey;
  let wKey: I.VKey;
  let logSigner: ReturnType<typeof parseSignerKey>;
  let tree: I.HashTree;
  const notes = new Map<number, string>(); // tree size → the log's signed checkpoint
  let submitted = 0;

  async function grow(to: number): Promise<void> {
    const n = to - submitted;
    const r = await fetch(`${log.url}/v1/entries/batch`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ entries: Array.from({ length: n }, (_, i) => submissionBody(submitted + i)) }),
    });
    assert.equal(r.status, 200);
    submitted = to;
    const cp = await fetchBytes(`${log.url}/checkpoint`);
    const c = I.parseCheckpointText(I.openNote(cp.body, [logKey]).text);
    assert.equal(c.size, to);
    notes.set(to, cp.body.toString('utf8'));
  }

  /** Leaf hashes from the log's level-0 tiles (independently), for proofs. */
  async function loadTree(size: number): Promise<void> {
    const leaves: Buffer[] = [];
    for (const t of I.tilesForSize(size).filter((t) => t.level === 0)) {
      const r = await fetchBytes(`${log.url}/${I.tilePath(0, t.index, t.width)}`);
      assert.equal(r.status, 200);
      leaves.push(...I.tileHashes(r.body, t.width));
    }
    tree = new I.HashTree(leaves);
  }

  const proof = (m: number, n: number) => (m === 0 || m === n ? [] : tree.consistencyProof(m, n));
  const add = (body: Buffer) => fetchBytes(`${w.url}/add-checkpoint`, { method: 'POST', body });

  /** Checks a 200 add-checkpoint answer: ≥ 1 lines, ours a valid cosignature/v1 with a timestamp in seconds. */
  function checkCosigned(res: { status: number; body: Buffer }, signedNote: string, t0: number, t1: number): number {
    assert.equal(res.status, 200, res.body.toString());
    const lines = I.parseSignatureLines(res.body);
    assert.ok(lines.length >= 1);
    // The witness cosigns with Ed25519 (cosignature/v1) and (configured here) ML-DSA-44 (subtree/v1): one line each.
    const ours = lines.filter((l) => l.name === WITNESS_NAME && l.sig.length === 8 + 64);
    assert.equal(ours.length, 1);
    const pq = lines.filter((l) => l.name === WITNESS_NAME && l.sig.length === 8 + 2420);
    assert.equal(pq.length, 1, 'one ML-DSA-44 cosignature line');
    const s = ours[0]!;
    assert.ok(s.keyId.equals(I.computeKeyId(WITNESS_NAME, 0x04, wKey.publicKey)), 'key ID uses type 0x04');
    assert.ok(!s.keyId.equals(I.computeKeyId(WITNESS_NAME, 0x01, wKey.publicKey)));
    assert.equal(s.sig.length, 8 + 64);
    const text = I.parseNote(signedNote).text;
    const r = I.verifySig(wKey, text, s);
    assert.ok(r.ok, 'cosignature/v1 verifies');
    assert.ok(r.timestamp! >= Math.floor(t0 / 1000) && r.timestamp! <= Math.ceil(t1 / 1000), `timestamp ${r.timestamp} is unix seconds now`);
    // "the client MAY concatenate it to the checkpoint, and use a note verification function"
    const joined = I.openNote(signedNote + res.body.toString('utf8'), [logKey, wKey]);
    assert.equal(joined.verified.length, 2);
    return r.timestamp!;
  }

  before(async () => {
    log = await startTestLog({ origin: 'interop.example/log-for-witness' });
    logKey = I.parseVKey(log.vkey);
    logSigner = parseSignerKey(readFileSync(join(log.dataDir, 'log.key'), 'utf8'));
    assert.equal(logSigner.type, 0x01);
    assert.ok(logSigner.pub.equals(logKey.publicKey));
    await grow(5);
    await grow(300);
    await grow(600);
    await grow(601);
    await grow(700);
    await loadTree(700);
    wdir = tempDir('pkglog-interop-witness-');
    w = await startWitness({ dataDir: wdir, listen: '127.0.0.1:0', name: WITNESS_NAME, cosign: { ed25519: true, mldsa: true }, gossipIntervalMs: 3_600_000, pollIntervalMs: 3_600_000, log: (level: string, msg: string) => { if (level === 'error') witnessErrors.push(msg); } });
    w.store.addLog(log.origin, log.vkey, null, Math.floor(Date.now() / 1000));
  });
  after(async () => {
    await w?.close();
    await log?.close();
    if (wdir) removeDir(wdir);
    if (log) removeDir(log.dataDir);
  });

  it('serves its vkey: type 0x04, key ID = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4]', async () => {
    const r = await fetchBytes(`${w.url}/vkey`);
    assert.equal(r.status, 200);
    wKey = I.parseVKey(r.body.toString('utf8').trim());
    assert.equal(wKey.name, WITNESS_NAME);
    assert.equal(wKey.type, I.TYPE_COSIGNATURE_V1);
    assert.equal(I.formatVKey(wKey.name, wKey.type, wKey.publicKey), w.vkey);
  });

  it('cosigns the first checkpoint with "old 0" and no proof', async () => {
    const t0 = Date.now();
    const res = await add(I.addCheckpointBody(0, [], notes.get(5)!));
    checkCosigned(res, notes.get(5)!, t0, Date.now());
  });

  it('answers a stale "old 0" with 409, Content-Type text/x.tlog.size and the size it knows + "\\n"', async () => {
    const res = await add(I.addCheckpointBody(0, [], notes.get(300)!));
    assert.equal(res.status, 409);
    assert.equal(res.type, 'text/x.tlog.size');
    assert.equal(res.body.toString('latin1'), '5\n');
  });

  it('cosigns 5 → 300 with a consistency proof computed from the log tiles', async () => {
    const t0 = Date.now();
    const res = await add(I.addCheckpointBody(5, proof(5, 300), notes.get(300)!));
    checkCosigned(res, notes.get(300)!, t0, Date.now());
  });

  it('cosigns the same checkpoint again (old = size, empty proof) with a fresh timestamp', async () => {
    const t0 = Date.now();
    const res = await add(I.addCheckpointBody(300, [], notes.get(300)!));
    checkCosigned(res, notes.get(300)!, t0, Date.now());
  });

  it('answers 422 to a consistency proof that does not verify (tampered, truncated, extended)', async () => {
    const good = proof(300, 600);
    const variants = [
      good.map((h, i) => (i === 0 ? I.sha256(h) : h)),
      good.slice(0, -1),
      [...good, good[0]!],
      [],
    ];
    for (const v of variants) {
      const res = await add(I.addCheckpointBody(300, v, notes.get(600)!));
      assert.equal(res.status, 422, `proof of ${v.length} lines → ${res.status} ${res.body}`);
    }
    // and nothing changed: 300 is still the latest
    const res = await add(I.addCheckpointBody(0, [], notes.get(600)!));
    assert.equal(res.status, 409);
    assert.equal(res.body.toString(), '300\n');
  });

  it('answers 400 when old size > checkpoint size', async () => {
    const res = await add(I.addCheckpointBody(601, [], notes.get(600)!));
    assert.equal(res.status, 400);
  });

  it('rejects a non-canonical old size line ("old 0300") and a missing blank line with 400, never 200', async () => {
    const ok = I.addCheckpointBody(300, proof(300, 600), notes.get(600)!).toString('utf8');
    for (const body of [ok.replace(/^old 300\n/, 'old 0300\n'), ok.replace(/^old 300\n/, 'old  300\n'), ok.replace(/^old 300\n/, 'old +300\n'), ok.replace('\n\n', '\n')]) {
      const res = await add(Buffer.from(body));
      assert.ok(res.status >= 400 && res.status < 500, `${JSON.stringify(body.slice(0, 20))} → ${res.status}`);
    }
  });

  it('answers 404 for an unknown origin and 403 when no signature verifies against the trusted key', async () => {
    const other = { name: 'interop.example/unknown', seed: I.sha256(Buffer.from('unknown')), pub: Buffer.alloc(0) };
    other.pub = Buffer.from(ed.getPublicKey(other.seed));
    const unknown = signCheckpointText(`interop.example/unknown\n1\n${I.b64(I.sha256(Buffer.from('x')))}\n`, other);
    assert.equal((await add(I.addCheckpointBody(0, [], unknown))).status, 404);
    // right origin, right key name, wrong key (key ID differs → unknown signature → no trusted signature)
    const impostor = { name: log.origin, seed: I.sha256(Buffer.from('impostor')), pub: Buffer.alloc(0) };
    impostor.pub = Buffer.from(ed.getPublicKey(impostor.seed));
    const forged = signCheckpointText(I.parseNote(notes.get(600)!).text.toString(), impostor);
    assert.equal((await add(I.addCheckpointBody(300, proof(300, 600), forged))).status, 403);
    // right key ID, bad signature bytes
    const n = notes.get(600)!;
    const mangled = n.replace(/(— \S+ )(\S{10})(\S)/, (_m, a: string, b: string, c: string) => a + b + (c === 'A' ? 'B' : 'A'));
    assert.notEqual(mangled, n);
    assert.equal((await add(I.addCheckpointBody(300, proof(300, 600), mangled))).status, 403);
  });

  it('cosigns 300 → 600, then lets exactly one of two racing requests from 600 win (compare-and-swap)', async () => {
    const t0 = Date.now();
    checkCosigned(await add(I.addCheckpointBody(300, proof(300, 600), notes.get(600)!)), notes.get(600)!, t0, Date.now());
    const [a, b] = await Promise.all([
      add(I.addCheckpointBody(600, proof(600, 601), notes.get(601)!)),
      add(I.addCheckpointBody(600, proof(600, 700), notes.get(700)!)),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 409]);
    const loser = a.status === 409 ? a : b;
    const winner = a.status === 200 ? 601 : 700;
    assert.equal(loser.type, 'text/x.tlog.size');
    assert.equal(loser.body.toString(), `${winner}\n`);
    if (winner === 601) checkCosigned(await add(I.addCheckpointBody(601, proof(601, 700), notes.get(700)!)), notes.get(700)!, t0, Date.now());
  });

  it('cosigns a resubmitted note that already carries its own earlier cosignature and 15 unknown "grease" signatures', async () => {
    const hash = createHash('sha256').update(log.origin).digest('hex');
    const withCosig = (await fetchBytes(`${w.url}/${hash}/checkpoint`)).body.toString('utf8');
    const grease = Array.from({ length: 15 }, (_, i) => `— grease.example/${i} ${I.b64(I.sha256(Buffer.from(String(i))).subarray(0, 24))}\n`).join('');
    const note = withCosig + grease;
    const t0 = Date.now();
    const res = await add(I.addCheckpointBody(700, [], note));
    checkCosigned(res, notes.get(700)!, t0, Date.now());
  });

  it('never cosigns with 64 proof lines ("The client MUST NOT send more than 63"), a note without its final newline, or a proof line that is not base64', async () => {
    const note = notes.get(700)!;
    const lines64 = `old 700\n${Array.from({ length: 64 }, () => I.b64(Buffer.alloc(32)) + '\n').join('')}\n${note}`;
    const noNewline = I.addCheckpointBody(700, [], note.slice(0, -1));
    const notBase64 = Buffer.from(`old 600\n${'!'.repeat(44)}\n\n${note}`);
    for (const body of [Buffer.from(lines64), noNewline, notBase64]) {
      const res = await add(body);
      assert.ok(res.status >= 400 && res.status < 500, `→ ${res.status}`);
    }
  });

  it('refuses a same-size checkpoint with a different root (signed by the real log key), never 200', async () => {
    const text = `${log.origin}\n700\n${I.b64(I.sha256(Buffer.from('fork')))}\n`;
    const res = await add(I.addCheckpointBody(700, [], signCheckpointText(text, logSigner)));
    // tlog-witness after C2SP/C2SP#280 (followed by transparency-dev/witness#576): 422 is used for a root mismatch as
    // well as an invalid proof; the v1.0.0 text said "409 Conflict". pkglog follows the current text.
    assert.equal(res.status, 422, `→ ${res.status} ${res.body} ${witnessErrors.join('; ')}`);
  });

  it('serves the latest cosigned checkpoint at GET /<hex sha256(origin)>/checkpoint (log signature + cosignature)', async () => {
    const hash = createHash('sha256').update(log.origin).digest('hex');
    const r = await fetchBytes(`${w.url}/${hash}/checkpoint`);
    assert.equal(r.status, 200);
    const n = I.openNote(r.body, [logKey, wKey]);
    assert.equal(n.verified.length, 2);
    assert.equal(I.parseCheckpointText(n.text).size, 700);
    assert.ok(n.text.equals(I.parseNote(notes.get(700)!).text));
    assert.equal((await fetchBytes(`${w.url}/${createHash('sha256').update('nope').digest('hex')}/checkpoint`)).status, 404);
  });

  describe('a second, fresh log (witness latest = 0)', () => {
    let fresh: Log;
    let freshSigner: ReturnType<typeof parseSignerKey>;
    before(async () => {
      fresh = await startTestLog({ origin: 'interop.example/fresh' });
      freshSigner = parseSignerKey(readFileSync(join(fresh.dataDir, 'log.key'), 'utf8'));
      w.store.addLog(fresh.origin, fresh.vkey, null, Math.floor(Date.now() / 1000));
    });
    after(async () => {
      await fresh?.close();
      if (fresh) removeDir(fresh.dataDir);
    });

    it('answers 422 to "old 0" with a non-empty proof ("The proof MUST be empty if the old size is zero")', async () => {
      const text = `${fresh.origin}\n2\n${I.b64(I.nodeHash(I.leafHash(Buffer.from('a')), I.leafHash(Buffer.from('b'))))}\n`;
      const res = await add(I.addCheckpointBody(0, [I.leafHash(Buffer.from('a'))], signCheckpointText(text, freshSigner)));
      assert.equal(res.status, 422);
    });

    it('refuses a size-0 checkpoint whose root is not SHA-256("") (never 200)', async () => {
      const text = `${fresh.origin}\n0\n${I.b64(I.sha256(Buffer.from('not empty')))}\n`;
      const res = await add(I.addCheckpointBody(0, [], signCheckpointText(text, freshSigner)));
      assert.equal(res.status, 422);
    });

    it('includes extension lines in the cosignature/v1 message ("if present MUST be included in the cosigned message")', async () => {
      const text = `${fresh.origin}\n0\n${I.b64(I.EMPTY_ROOT)}\nextension line one\n`;
      const note = signCheckpointText(text, freshSigner);
      const res = await add(I.addCheckpointBody(0, [], note));
      assert.equal(res.status, 200, res.body.toString());
      const s = I.parseSignatureLines(res.body).find((l) => l.name === WITNESS_NAME)!;
      assert.ok(I.verifySig(wKey, Buffer.from(text), s).ok, 'cosignature covers the extension line');
    });

    it('cosigns the empty-tree checkpoint the log itself serves (size 0)', async () => {
      const note = (await fetchBytes(`${fresh.url}/checkpoint`)).body.toString('utf8');
      assert.equal(I.parseCheckpointText(I.parseNote(note).text).size, 0);
      const t0 = Date.now();
      const freshKey = I.parseVKey(fresh.vkey);
      const res = await add(I.addCheckpointBody(0, [], note));
      assert.equal(res.status, 200, res.body.toString());
      const s = I.parseSignatureLines(res.body).find((l) => l.name === WITNESS_NAME)!;
      const r = I.verifySig(wKey, I.parseNote(note).text, s);
      assert.ok(r.ok && r.timestamp! >= Math.floor(t0 / 1000));
      I.openNote(note + res.body.toString(), [freshKey, wKey]);
    });

    it('checks the consistency proof against ITS stored root: a valid proof from a forked tree of the same old size → 422', async () => {
      const d = (i: number) => I.leafHash(Buffer.from(`fresh ${i}`));
      const honest = new I.HashTree(Array.from({ length: 20 }, (_, i) => d(i)));
      const forked = new I.HashTree(Array.from({ length: 20 }, (_, i) => (i === 3 ? d(1000) : d(i))));
      const cp = (t: I.HashTree, n: number) => signCheckpointText(`${fresh.origin}\n${n}\n${I.b64(t.root(n))}\n`, freshSigner);
      const zero = await add(I.addCheckpointBody(0, [], cp(honest, 10)));
      assert.equal(zero.status, 200, zero.body.toString());
      // the fork's proof verifies between the FORK's roots of sizes 10 and 20, but the witness holds the honest 10
      assert.ok(I.verifyConsistency(10, 20, forked.root(10), forked.root(20), forked.consistencyProof(10, 20)));
      const res = await add(I.addCheckpointBody(10, forked.consistencyProof(10, 20), cp(forked, 20)));
      assert.equal(res.status, 422, `${res.status} ${res.body}`);
      const ok = await add(I.addCheckpointBody(10, honest.consistencyProof(10, 20), cp(honest, 20)));
      assert.equal(ok.status, 200, ok.body.toString());
    });
  });
});

describe('interop: a log that pushes to a real witness publishes verifiable cosignatures', function () {
  this.timeout(30_000);
  it('a Go-format log key written by the independent code, quorum 1: replies and /checkpoint carry a valid cosignature/v1', async () => {
    const origin = 'interop.example/witnessed';
    const logDir = tempDir();
    const wdir = tempDir('pkglog-interop-witness-');
    const seed = I.sha256(Buffer.from('interop log seed'));
    mkdirSync(logDir, { recursive: true });
    writeFileSync(join(logDir, 'log.key'), formatSignerKey(origin, 0x01, seed) + '\n', { mode: 0o600 });
    const logKey = I.parseVKey(I.formatVKey(origin, 0x01, ed.getPublicKey(seed)));
    const w = await startWitness({ dataDir: wdir, listen: '127.0.0.1:0', name: WITNESS_NAME, cosign: { ed25519: true, mldsa: true }, gossipIntervalMs: 3_600_000, pollIntervalMs: 3_600_000, log: (level: string, msg: string) => { if (level === 'error') witnessErrors.push(msg); } });
    const wKey = I.parseVKey(w.vkey);
    w.store.addLog(origin, I.formatVKey(origin, 0x01, ed.getPublicKey(seed)), null, Math.floor(Date.now() / 1000));
    writeFileSync(join(logDir, 'witnesses.txt'), `${w.url} ${w.vkey}\n`);
    const log = await startTestLog({ dataDir: logDir, witnessQuorum: '1', witnessInterval: '20' });
    try {
      assert.equal(log.vkey, I.formatVKey(origin, 0x01, ed.getPublicKey(seed)));
      const t0 = Date.now();
      for (const i of [0, 1, 2]) {
        const r = await fetch(`${log.url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(i)) });
        const body = (await r.json()) as { cosigned?: boolean; proof: string };
        assert.equal(r.status, 200);
        assert.equal(body.cosigned, undefined, 'reply waited for a cosigned checkpoint');
        const tp = I.parseTlogProofFile(body.proof);
        const n = I.openNote(tp.checkpoint, [logKey, wKey]);
        assert.equal(n.verified.length, 2, 'log signature and cosignature both verify');
        const cos = n.verified.find((v) => v.key === wKey)!;
        assert.ok(cos.timestamp! >= Math.floor(t0 / 1000) && cos.timestamp! <= Math.ceil(Date.now() / 1000));
        const c = I.parseCheckpointText(n.text);
        assert.ok(I.verifyInclusion(I.leafHash(tp.extra!), tp.index, c.size, tp.proof, c.root));
      }
      const cp = await fetchBytes(`${log.url}/checkpoint`);
      const n = I.openNote(cp.body, [logKey, wKey]);
      assert.equal(n.verified.length, 2);
      // the cosignature line on the log's checkpoint is byte-identical in form: "— <name> <base64(76 bytes)>\n"
      const line = n.sigs.find((s) => s.name === WITNESS_NAME)!;
      assert.equal(I.b64decode(line.line.split(' ')[2]!, 'cosig').length, 4 + 8 + 64);
    } finally {
      await log.close();
      await w.close();
      removeDir(logDir);
      removeDir(wdir);
    }
  });
});
