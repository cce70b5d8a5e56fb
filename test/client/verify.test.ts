import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LogDouble, TestWitness, makeEntry, fileSha, REGISTRY_VKEY } from './log-double.ts';
import { cli, tempDir, writeFile } from './helpers.ts';
import { keyPairFromSeed } from '../../core/ed25519.ts';
import { seed } from './log-double.ts';
import { parseEvidence, verifyEvidence } from '../../core/evidence.ts';
import { parseVerifierKey } from '../../core/note.ts';
import { encodeLeaf } from '../../core/entry.ts';
import { parseTlogProof, formatTlogProof } from '../../core/tlog-proof.ts';

const T0 = 1_750_000_000; // seconds
const DAY = 86400;

describe('client verify (against a log double)', function () {
  let log: LogDouble;
  let w0: TestWitness;
  let w1: TestWitness;
  let tmp: { dir: string; cleanup(): void };
  let file: string;
  let policy: string;
  let state: string;
  const content = 'the wheel bytes';
  const artifact = { ecosystem: 'pypi', name: 'requests', version: '2.0.0', filename: 'requests-2.0.0.whl', sha256: fileSha(content) };

  beforeEach(async () => {
    tmp = tempDir();
    log = new LogDouble();
    w0 = new TestWitness('w0.test', T0);
    w1 = new TestWitness('w1.test', T0);
    log.witnesses = [w0, w1];
    await log.listen();
    log.append([makeEntry({ ...artifact, version: '1.0.0', filename: 'requests-1.0.0.whl', sha256: fileSha('old') }, T0 * 1000)]);
    log.append([makeEntry(artifact, T0 * 1000)]);
    log.publish();
    file = writeFile(tmp.dir, 'requests-2.0.0.whl', content);
    policy = writeFile(tmp.dir, 'policy', log.policy());
    state = join(tmp.dir, 'state');
  });
  afterEach(async () => {
    await log.close();
    tmp.cleanup();
  });

  const base = () => ['verify', file, '--ecosystem', 'pypi', '--name', 'requests', '--version', '2.0.0', '--policy', policy, '--registry-key', REGISTRY_VKEY, '--state-dir', state];
  const at = (sec: number) => ({ now: sec * 1000 });

  it('verifies online and explains every check', async () => {
    const r = await cli(base(), at(T0 + 10));
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /file-hash: file SHA-256/);
    assert.match(r.out, /checkpoint .* meets the quorum/);
    assert.match(r.out, /VERIFIED/);
  });

  it('verifies offline from a tlog-proof, with JSON output', async () => {
    const proof = writeFile(tmp.dir, 'p.tlog-proof', log.tlogProof(1));
    const r = await cli([...base(), '--proof', proof, '--offline', '--json'], at(T0 + 10));
    assert.equal(r.code, 0, r.out);
    const j = r.json();
    assert.equal(j.ok, true);
    assert.equal(j.entry.index, 1);
    assert.ok(j.checks.some((c: any) => c.id === 'key-continuity' && c.status === 'skip'));
  });

  it('fails a tampered file with exit 1', async () => {
    writeFile(tmp.dir, 'requests-2.0.0.whl', 'the wheel bytes, modified');
    const r = await cli(base(), at(T0 + 10));
    assert.equal(r.code, 1);
    assert.match(r.out, /lookup: the log has no entry with this file's sha256/);
    const proof = writeFile(tmp.dir, 'p.tlog-proof', log.tlogProof(1));
    const r2 = await cli([...base(), '--proof', proof], at(T0 + 10));
    assert.equal(r2.code, 1);
    assert.match(r2.out, /FAIL  file-hash/);
  });

  it('fails the wrong package with exit 1', async () => {
    const args = base();
    args[7] = '9.9.9';
    const r = await cli(args, at(T0 + 10));
    assert.equal(r.code, 1);
    assert.match(r.out, /only as: pypi\/requests 2.0.0/);
    const proof = writeFile(tmp.dir, 'p.tlog-proof', log.tlogProof(1));
    const r2 = await cli([...args, '--proof', proof], at(T0 + 10));
    assert.equal(r2.code, 1);
    assert.match(r2.out, /package: .*version is "2.0.0", expected "9.9.9"/);
  });

  it('fails a bad inclusion proof with exit 1', async () => {
    const p = parseTlogProof(log.tlogProof(1));
    p.inclusionProof[0] = Buffer.alloc(32, 7);
    const proof = writeFile(tmp.dir, 'p.tlog-proof', formatTlogProof(p));
    const r = await cli([...base(), '--proof', proof], at(T0 + 10));
    assert.equal(r.code, 1);
    assert.match(r.out, /FAIL  inclusion/);
  });

  it('fails a malformed proof file with exit 1', async () => {
    const proof = writeFile(tmp.dir, 'p.tlog-proof', 'not a proof\n');
    const r = await cli([...base(), '--proof', proof], at(T0 + 10));
    assert.equal(r.code, 1);
    assert.match(r.out, /not a valid C2SP tlog-proof/);
  });

  it('fails an untrusted registry with exit 1', async () => {
    const args = base().filter((a) => a !== REGISTRY_VKEY && a !== '--registry-key');
    const r = await cli(args, at(T0 + 10));
    assert.equal(r.code, 1);
    assert.match(r.out, /registry "pypi.org", which is not trusted/);
  });

  it('fails a checkpoint without the quorum with exit 3', async () => {
    log.publish([w0]); // w1 did not cosign
    const r = await cli(base(), at(T0 + 10));
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, /FAIL  quorum: checkpoint does not meet the policy quorum \(valid cosignatures from: w0\)/);
  });

  it('fails a stale checkpoint with --max-age (exit 3), passes a fresh one', async () => {
    const r = await cli([...base(), '--max-age', '1h'], at(T0 + 2 * 3600));
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, /FAIL  freshness: checkpoint is stale/);
    const ok = await cli([...base(), '--max-age', '1h'], at(T0 + 60));
    assert.equal(ok.code, 0, ok.out);
  });

  it('detects a fork against the saved checkpoint (exit 4) and writes verifiable evidence', async () => {
    assert.equal((await cli(base(), at(T0 + 10))).code, 0);
    // The log rewrites entry 0 and grows: its new checkpoint is not an extension of the saved one.
    log.rewrite(0, encodeLeaf(makeEntry({ ...artifact, version: '1.0.0', filename: 'requests-1.0.0.whl', sha256: fileSha('evil') }, T0 * 1000)));
    log.append([makeEntry({ ...artifact, version: '3.0.0', filename: 'requests-3.0.0.whl', sha256: fileSha('x') }, T0 * 1000)]);
    log.publish();
    const r = await cli([...base(), '--json'], at(T0 + 20));
    assert.equal(r.code, 4, r.out);
    const j = r.json();
    const files = readdirSync(join(state, 'evidence'));
    assert.equal(files.length, 1);
    assert.equal(j.evidence, join(state, 'evidence', files[0]!));
    const ev = parseEvidence(readFileSync(j.evidence, 'utf8'));
    const summary = verifyEvidence(ev, parseVerifierKey(log.vkey));
    assert.equal(summary.kind, 'inconsistent');
    // The saved checkpoint did not move.
    const again = await cli(base(), at(T0 + 30));
    assert.equal(again.code, 4);
  });

  it('detects a same-size fork offline (exit 4)', async () => {
    assert.equal((await cli(base(), at(T0 + 10))).code, 0);
    log.rewrite(0, encodeLeaf(makeEntry({ ...artifact, version: '1.0.0', filename: 'requests-1.0.0.whl', sha256: fileSha('evil') }, T0 * 1000)));
    log.publish();
    const proof = writeFile(tmp.dir, 'p.tlog-proof', log.tlogProof(1));
    const r = await cli([...base(), '--proof', proof, '--offline'], at(T0 + 20));
    assert.equal(r.code, 4, r.out);
    assert.match(r.out, /FORK: the log signed two different roots for tree size 2/);
  });

  it('accepts an older consistent checkpoint without moving the state back', async () => {
    const oldProof = writeFile(tmp.dir, 'old.tlog-proof', log.tlogProof(1));
    log.append([makeEntry({ ...artifact, version: '3.0.0', filename: 'requests-3.0.0.whl', sha256: fileSha('x') }, T0 * 1000)]);
    log.publish();
    assert.equal((await cli(base(), at(T0 + 10))).code, 0);
    const r = await cli([...base(), '--proof', oldProof, '--log', log.url], at(T0 + 10));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /is a prefix of the saved size 3/);
  });

  it('warns about a publisher key change, fails it with --strict-keys (exit 5)', async () => {
    const other = keyPairFromSeed(seed('other publisher'));
    log.append([makeEntry({ ...artifact, version: '2.5.0', filename: 'requests-2.5.0.whl', sha256: fileSha('2.5') }, T0 * 1000, other)]);
    // Our artifact, re-logged later under another file name, signed by the new key... use a new version instead:
    const c3 = 'three';
    log.append([makeEntry({ ...artifact, version: '3.0.0', filename: 'requests-3.0.0.whl', sha256: fileSha(c3) }, T0 * 1000, other)]);
    log.publish();
    const f3 = writeFile(tmp.dir, 'requests-3.0.0.whl', c3);
    const args = ['verify', f3, ...base().slice(2)];
    args[7] = '3.0.0';
    const warn = await cli(args, at(T0 + 10));
    assert.equal(warn.code, 0, warn.out);
    assert.match(warn.out, /WARN  key-continuity: publisher key changed/);
    const strict = await cli([...args, '--strict-keys'], at(T0 + 10));
    assert.equal(strict.code, 5, strict.out);
    assert.match(strict.out, /first used for version 1.0.0/);
  });

  it('fails a too-young artifact with --min-age (exit 6)', async () => {
    const r = await cli([...base(), '--min-age', '90d'], at(T0 + 10));
    assert.equal(r.code, 6, r.out);
    assert.match(r.out, /FAIL  min-age: entry 1 is not provably 90d old/);
  });

  it('passes --min-age with old cosignatures from the witnesses\' history', async () => {
    // 100 days later the log has grown; the witnesses cosigned the old checkpoint back at T0.
    w0.clock = w1.clock = T0 + 100 * DAY;
    log.append([makeEntry({ ...artifact, version: '3.0.0', filename: 'requests-3.0.0.whl', sha256: fileSha('x') }, (T0 + 100 * DAY) * 1000)]);
    log.publish();
    const r = await cli([...base(), '--min-age', '90d', '--json'], at(T0 + 100 * DAY + 10));
    assert.equal(r.code, 0, r.out);
    const j = r.json();
    assert.deepEqual(j.minAge.map((w: any) => w.ok), [true, true]);
    // ...but not 101 days.
    const young = await cli([...base(), '--min-age', '101d'], at(T0 + 100 * DAY + 10));
    assert.equal(young.code, 6);
  });

  it('proves min-age offline when the proof\'s own checkpoint was cosigned long enough ago', async () => {
    const proof = writeFile(tmp.dir, 'p.tlog-proof', log.tlogProof(1));
    const r = await cli([...base(), '--proof', proof, '--offline', '--min-age', '30d'], at(T0 + 31 * DAY));
    assert.equal(r.code, 0, r.out);
  });

  it('gossips the checkpoint to the witnesses', async () => {
    const r = await cli([...base(), '--gossip'], at(T0 + 10));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /gossip: witnesses w0, w1 report the checkpoint consistent/);
  });

  it('rejects bad usage with exit 2 and prints help', async () => {
    assert.equal((await cli(['verify', file, '--name', 'x'])).code, 2);
    assert.equal((await cli(['verify', file, '--bogus'])).code, 2);
    assert.equal((await cli(['nonsense'])).code, 2);
    const help = await cli(['verify', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /Exit codes/);
  });
});
