/**
 * The witness with ML-DSA-44: add-checkpoint returns an Ed25519 cosignature/v1 line and an ML-DSA-44 subtree/v1 line
 * (both by default; each switchable), GET /vkeys lists every key in use (/vkey stays the Ed25519 one), and a log
 * whose configured key is ML-DSA-44 is checked with it. Through a real `pkglog witness` process on 127.0.0.1:0.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { FakeLog, seedFrom } from './fake-log.ts';
import { startProcess, type Started } from '../support/process.ts';
import { tempDir, runAsync } from '../client/helpers.ts';
import { formatVerifierKey, parseSignedNote, parseVerifierKey, signNote, verifyNote, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44 } from '../../core/note.ts';
import { mldsaCosigner, cosignatureTimestamp, COSIGNATURE_MLDSA44_SIZE } from '../../core/cosignature.ts';
import { parseCosignedMessage } from '../../core/subtree.ts';
import * as ind from '../interop/independent.ts';

describe('witness: ML-DSA-44 cosignatures and ML-DSA-44 log keys (real process)', function () {
  this.timeout(180_000);
  let tmp: { dir: string; cleanup(): void };
  const procs: Started[] = [];
  const d = (p: string) => join(tmp.dir, p);
  // A log with an Ed25519 key, and one whose only key is ML-DSA-44.
  const edLog = new FakeLog('example.test/ed-log').append(5);
  const pqLog = new FakeLog('example.test/pq-log').append(7);
  const pqSigner = mldsaCosigner(pqLog.origin, seedFrom('pq log'), { timestamp: () => 1_800_000_000 });
  const pqVkey = formatVerifierKey(pqLog.origin, SIG_TYPE_MLDSA44, pqSigner.publicKey);

  const ok = async (args: string[]) => {
    const r = await runAsync(args);
    assert.equal(r.code, 0, `pkglog ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const start = async (dir: string, extra: string[] = []) => {
    await ok(['witness', 'add-log', edLog.origin, edLog.vkey, '--data-dir', d(dir)]);
    await ok(['witness', 'add-log', pqLog.origin, pqVkey, '--data-dir', d(dir)]);
    const p = await startProcess(['witness', '--data-dir', d(dir), '--listen', '127.0.0.1:0', '--name', `${dir}.example.test`, ...extra]);
    procs.push(p);
    return p;
  };
  const post = (url: string, body: string) => fetch(`${url}/add-checkpoint`, { method: 'POST', body });

  before(() => {
    tmp = tempDir('pkglog-witness-mldsa-');
  });
  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGKILL');
    tmp?.cleanup();
  });

  it('--cosign ed25519,ml-dsa-44: both cosignatures, /vkey is the Ed25519 key, /vkeys both; each line verifies (core and independently)', async () => {
    const w = await start('both', ['--cosign', 'ed25519,ml-dsa-44']);
    const vkeys = (await (await fetch(`${w.url}/vkeys`)).text()).trimEnd().split('\n');
    assert.equal(vkeys.length, 2);
    assert.equal((await (await fetch(`${w.url}/vkey`)).text()).trim(), vkeys[0]);
    assert.equal(w.info.get('vkey'), vkeys[0]);
    assert.deepEqual(vkeys.map((k) => parseVerifierKey(k).type), [SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44]);
    assert.equal(statSync(d('both/witness-mldsa.key')).mode & 0o777, 0o600);
    assert.match(readFileSync(d('both/witness-mldsa.key'), 'utf8'), /^PRIVATE\+KEY\+both\.example\.test\+[0-9a-f]{8}\+B/);

    const cp = edLog.checkpoint();
    const r = await post(w.url, `old 0\n\n${cp}`);
    const body = await r.text();
    assert.equal(r.status, 200, body);
    const lines = body.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 2);
    const note = cp + body;
    const v = verifyNote(note, vkeys.map(parseVerifierKey));
    assert.equal(v.verified.length, 2);
    const pq = parseSignedNote(note).signatures.find((s) => s.signature.length === COSIGNATURE_MLDSA44_SIZE)!;
    assert.ok(cosignatureTimestamp(pq) > 0, 'an add-checkpoint cosignature has a non-zero timestamp');
    // Independently: the subtree/v1 message for [0, 5) under the witness's name, checked with noble.
    const iv = ind.parseVKey(vkeys[1]!);
    const opened = ind.openNote(note, [iv]);
    assert.equal(opened.verified.length, 1);
    const cpText = ind.parseCheckpointText(parseSignedNote(note).text);
    const msg = ind.subtreeV1Message({ cosignerName: 'both.example.test', timestamp: opened.verified[0]!.timestamp!, origin: cpText.origin, start: 0, end: 5, hash: cpText.root });
    assert.deepEqual({ ...parseCosignedMessage(msg), hash: null }, { cosignerName: 'both.example.test', timestamp: opened.verified[0]!.timestamp, origin: edLog.origin, start: 0, end: 5, hash: null });

    // The monitoring checkpoint carries the log signature and both cosignatures.
    const mon = await (await fetch(`${w.url}/${ind.sha256(Buffer.from(edLog.origin)).toString('hex')}/checkpoint`)).text();
    assert.equal(verifyNote(mon, vkeys.map(parseVerifierKey)).verified.length, 2);
  });

  it('checks an ML-DSA-44 log signature when the configured log key is one (403 for a bad or missing one)', async () => {
    const w = procs[0]!;
    const text = parseSignedNote(pqLog.checkpoint()).text;
    const good = signNote(text, [pqSigner]);
    const r = await post(w.url, `old 0\n\n${good}`);
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal((await r.text()).split('\n').filter(Boolean).length, 2);
    // Signed only with the log's Ed25519-style key of the same name: not the configured key → 403.
    const wrong = pqLog.checkpoint();
    const r2 = await post(w.url, `old 7\n\n${wrong}`);
    assert.equal(r2.status, 403, await r2.text());
    // A tampered ML-DSA signature → 403.
    const sig = parseSignedNote(good).signatures[0]!;
    sig.signature[900]! ^= 1;
    const bad = text + '\n' + `— ${sig.name} ${Buffer.concat([sig.keyId, sig.signature]).toString('base64')}\n`;
    const r3 = await post(w.url, `old 7\n\n${bad}`);
    assert.equal(r3.status, 403, await r3.text());
  });

  it('by default both (the ML-DSA key is created 0600 next to the Ed25519 one); --cosign ed25519 and --cosign ml-dsa-44 switch each off; a bad --cosign is a usage error', async () => {
    const def = await start('default');
    const defKeys = (await (await fetch(`${def.url}/vkeys`)).text()).trimEnd().split('\n');
    assert.deepEqual(defKeys.map((k) => parseVerifierKey(k).type), [SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_MLDSA44]);
    assert.equal(def.info.get('vkey'), defKeys[0]);
    assert.equal(def.info.get('also-vkey'), defKeys[1]);
    assert.equal(statSync(d('default/witness-mldsa.key')).mode & 0o777, 0o600);
    const r0 = await (await post(def.url, `old 0\n\n${edLog.checkpoint()}`)).text();
    assert.equal(r0.split('\n').filter(Boolean).length, 2);
    assert.equal(verifyNote(edLog.checkpoint() + r0, defKeys.map(parseVerifierKey)).verified.length, 2);
    const ed = await start('edonly', ['--cosign', 'ed25519']);
    assert.equal((await (await fetch(`${ed.url}/vkeys`)).text()).trimEnd().split('\n').length, 1);
    const r1 = await (await post(ed.url, `old 0\n\n${edLog.checkpoint()}`)).text();
    assert.equal(r1.split('\n').filter(Boolean).length, 1);
    assert.equal(parseSignedNote(edLog.checkpoint() + r1).signatures[1]!.signature.length, 72);

    const pq = await start('pqonly', ['--cosign', 'ml-dsa-44']);
    const vk = (await (await fetch(`${pq.url}/vkeys`)).text()).trimEnd().split('\n');
    assert.equal(vk.length, 1);
    assert.equal(parseVerifierKey(vk[0]!).type, SIG_TYPE_MLDSA44);
    const r2 = await (await post(pq.url, `old 0\n\n${edLog.checkpoint()}`)).text();
    assert.equal(verifyNote(edLog.checkpoint() + r2, [parseVerifierKey(vk[0]!)]).verified.length, 1);

    const bad = await runAsync(['witness', '--data-dir', d('bad'), '--listen', '127.0.0.1:0', '--cosign', 'rsa']);
    assert.equal(bad.code, 2, bad.stderr);
  });
});
