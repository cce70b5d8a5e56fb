import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogDouble, TestWitness, makeEntry, fileSha, REGISTRY_VKEY, seed } from './log-double.ts';
import { cli, tempDir, writeFile } from './helpers.ts';
import { keyPairFromSeed } from '../../core/ed25519.ts';
import { encodeLeaf, type Artifact } from '../../core/entry.ts';
import { encodeBase64 } from '../../core/encoding.ts';
import { parseVerifierKey } from '../../core/note.ts';
import { verifyViolation } from '../../client/violation.ts';
import { FileIndex, fileKeyHash } from '../../client/file-index.ts';

const T0 = 1_750_000_000;

function art(i: number, name = 'pkg'): Artifact {
  return { ecosystem: 'pypi', name: `${name}${i % 37}`, version: `1.${i}`, filename: `${name}-${i}.tar.gz`, sha256: fileSha(`c${i}`) };
}

describe('client monitor and audit (against a log double)', function () {
  let log: LogDouble;
  let tmp: { dir: string; cleanup(): void };
  let policy: string;
  let state: string;

  beforeEach(async () => {
    tmp = tempDir();
    log = new LogDouble();
    log.witnesses = [new TestWitness('w0.test', T0)];
    await log.listen();
    log.append(Array.from({ length: 600 }, (_, i) => makeEntry(art(i), T0 * 1000)));
    log.publish();
    policy = writeFile(tmp.dir, 'policy', log.policy());
    state = join(tmp.dir, 'state');
  });
  afterEach(async () => {
    await log.close();
    tmp.cleanup();
  });

  const audit = (...extra: string[]) => cli(['audit', '--log', log.url, '--policy', policy, '--registry-key', REGISTRY_VKEY, '--state-dir', state, '--quiet', ...extra]);
  const monitor = (...extra: string[]) => cli(['monitor', '--policy', policy, '--registry-key', REGISTRY_VKEY, '--state-dir', state, '--quiet', ...extra]);

  it('audit of a clean log passes', async () => {
    const r = await audit('--json');
    assert.equal(r.code, 0, r.out);
    const j = r.json();
    assert.equal(j.entries, 600);
    assert.equal(j.stats.signaturesChecked, 600);
  });

  it('audit with sampled signatures reports the sample', async () => {
    const r = await audit('--sample', '0.1');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /signatures checked on a 10.00% sample/);
  });

  it('audit without a trust root uses the served vkey with a warning', async () => {
    const r = await cli(['audit', '--log', log.url, '--state-dir', state, '--quiet', '--registry-key', REGISTRY_VKEY]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.err, /trusting the key the log serves/);
  });

  it('audit of a log with a second artifact for a file fails with exit 8 and verifiable evidence', async () => {
    log.append([makeEntry({ ...art(5), sha256: fileSha('evil') }, T0 * 1000)]);
    log.publish();
    const r = await audit('--json');
    assert.equal(r.code, 8, r.out);
    const j = r.json();
    const conflict = j.checks.find((c: any) => c.id === 'conflict');
    assert.match(conflict.message, /entry 600 logs a different artifact than entry 5/);
    const desc = verifyViolation(JSON.stringify(j.evidence[0]), parseVerifierKey(log.vkey));
    assert.match(desc, /two artifacts for pypi\/pkg5 1.5 pkg-5.tar.gz: entries 5/);
  });

  it('audit catches bad signatures and malformed entries', async () => {
    const e = makeEntry(art(1000), T0 * 1000);
    e.publisherSignature = Buffer.alloc(64, 1);
    log.append([e]);
    log.appendLeaves([Buffer.from('not a leaf')]);
    log.publish();
    const r = await audit('--json');
    assert.equal(r.code, 8, r.out);
    const ids = r.json().checks.filter((c: any) => c.status === 'fail').map((c: any) => c.id);
    assert.deepEqual(ids, ['bad-publisher-signature', 'malformed-entry']);
    for (const ev of r.json().evidence) assert.ok(verifyViolation(JSON.stringify(ev), parseVerifierKey(log.vkey)));
  });

  it('audit catches a hash tile that does not match the entries', async () => {
    log.corruptTile = 'tile/0/001';
    const r = await audit();
    assert.equal(r.code, 8, r.out);
    assert.match(r.out, /hash tile tile\/0\/001 served by the log differs/);
  });

  it('audit catches a checkpoint whose root does not match the tiles', async () => {
    log.rewrite(3, encodeLeaf(makeEntry({ ...art(3), sha256: fileSha('other') }, T0 * 1000)));
    // keep the old signed checkpoint (size 600) but serve the rewritten tiles
    const r = await audit();
    assert.equal(r.code, 8, r.out);
    assert.match(r.out, /(root|differs)/);
  });

  it('monitor follows the log, resumes, reports watched packages, key changes and conflicts', async () => {
    const watchKey = encodeBase64(keyPairFromSeed(seed('watched publisher')).publicKey);
    const first = await monitor('--log', log.url, '--watch', 'pypi/pkg3', '--json');
    assert.equal(first.code, 0, first.out);
    const j1 = first.json();
    assert.equal(j1.entries, 600);
    assert.ok(j1.events.length >= 16 && j1.events.every((e: any) => e.package === 'pypi/pkg3' && e.kind === 'watched-entry'));

    // New entries: a key change for the watched package, a watched key, and (behind the log's back) a second
    // artifact for a file logged in the first run.
    const other = keyPairFromSeed(seed('watched publisher'));
    log.append([makeEntry({ ...art(3), version: '9.0', filename: 'pkg-new.tar.gz', sha256: fileSha('n') }, T0 * 1000, other)]);
    log.append([makeEntry({ ...art(1), version: '9.1', filename: 'x.tar.gz', sha256: fileSha('m') }, T0 * 1000, other)]);
    log.appendLeaves([encodeLeaf(makeEntry({ ...art(42), sha256: fileSha('evil') }, T0 * 1000))]);
    log.publish();
    const second = await monitor('--log', log.url, '--watch', 'pypi/pkg3', '--watch-key', watchKey, '--json');
    assert.equal(second.code, 8, second.out);
    const j2 = second.json();
    assert.equal(j2.from, 600);
    assert.equal(j2.entries, 3);
    assert.ok(j2.checks.some((c: any) => c.id === 'key-change' && /publisher key change for pypi\/pkg3/.test(c.message)));
    assert.ok(j2.checks.some((c: any) => c.id === 'conflict' && /entry 602 logs a different artifact than entry 42/.test(c.message)));
    assert.equal(j2.events.filter((e: any) => e.kind === 'watched-entry').length, 2);

    // Reported once: a third run has nothing new.
    const third = await monitor('--log', log.url, '--watch', 'pypi/pkg3');
    assert.equal(third.code, 0, third.out);
  });

  it('monitor reports a key change of a watched package with exit 5', async () => {
    assert.equal((await monitor('--log', log.url, '--watch', 'pypi/pkg3')).code, 0);
    const other = keyPairFromSeed(seed('new key'));
    log.append([makeEntry({ ...art(3), version: '9.0', filename: 'pkg-new.tar.gz', sha256: fileSha('n') }, T0 * 1000, other)]);
    log.publish();
    const r = await monitor('--log', log.url, '--watch', 'pypi/pkg3');
    assert.equal(r.code, 5, r.out);
    assert.match(r.out, /KEY CHANGE: publisher key change for pypi\/pkg3/);
  });

  it('monitor detects a fork with exit 4', async () => {
    assert.equal((await monitor('--log', log.url)).code, 0);
    log.rewrite(7, encodeLeaf(makeEntry({ ...art(7), sha256: fileSha('rewritten') }, T0 * 1000)));
    log.append([makeEntry(art(700), T0 * 1000)]);
    log.publish();
    const r = await monitor('--log', log.url);
    assert.equal(r.code, 4, r.out);
    assert.match(r.out, /FORK/);
  });

  it('monitor --from-latest starts at the current checkpoint', async () => {
    const r = await monitor('--log', log.url, '--from-latest', '--json');
    assert.equal(r.code, 0, r.out);
    assert.equal(r.json().entries, 0);
    log.append([makeEntry(art(601), T0 * 1000)]);
    log.publish();
    const r2 = await monitor('--log', log.url, '--json');
    assert.equal(r2.code, 0, r2.out);
    assert.equal(r2.json().entries, 1);
  });
});

describe('client FileIndex', function () {
  it('finds second artifacts within a batch, across flushes, and ignores replays', () => {
    const tmp = tempDir();
    try {
      const idx = new FileIndex(join(tmp.dir, 'i'), 8);
      const k = (i: number) => fileKeyHash(`pypi\nname${i}\n1\nf`);
      const a = (s: string) => Buffer.from(fileSha(s), 'hex');
      for (let i = 0; i < 5; i++) idx.add(k(i), a(`x${i}`), i);
      idx.add(k(2), a('different'), 5);
      idx.add(k(3), a('x3'), 6); // same artifact again: not a conflict
      assert.deepEqual(idx.flush(), [{ firstIndex: 2, index: 5 }]);
      idx.add(k(4), a('other'), 7);
      idx.add(k(0), a('x0'), 0); // replayed entry
      assert.deepEqual(idx.flush(), [{ firstIndex: 4, index: 7 }]);
      const again = new FileIndex(join(tmp.dir, 'i'), 8);
      again.add(k(1), a('nope'), 9);
      assert.deepEqual(again.flush(), [{ firstIndex: 1, index: 9 }]);
      void readFileSync;
    } finally {
      tmp.cleanup();
    }
  });
});

describe('client FileIndex growth', function () {
  it('grows its buckets and keeps every record across reopen', () => {
    const tmp = tempDir();
    try {
      const dir = join(tmp.dir, 'g');
      const idx = new FileIndex(dir, 1000, 2);
      const k = (i: number) => fileKeyHash(`k${i}`);
      const a = (i: number) => Buffer.from(fileSha(`a${i}`), 'hex');
      for (let i = 0; i < 5000; i++) {
        idx.add(k(i), a(i), i);
        if (idx.full) assert.deepEqual(idx.flush(), []);
      }
      assert.deepEqual(idx.flush(), []);
      idx.close();
      const again = new FileIndex(dir, 1000, 2);
      for (let i = 0; i < 5000; i += 997) again.add(k(i), a(i + 1), 10_000 + i);
      assert.deepEqual(again.flush().map((c) => c.firstIndex), [0, 997, 1994, 2991, 3988, 4985]);
      again.destroy();
    } finally {
      tmp.cleanup();
    }
  });
});
