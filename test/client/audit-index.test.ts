/**
 * `pkglog audit --index` against the index test double (test/support/index-double.ts): an honest index passes; an
 * index that publishes a wrong map root is found, written as pkglog-index-evidence/v1 with exit 8, and the evidence
 * verifies on its own (`pkglog evidence verify` with only the output log's key, and a naive map rebuild from
 * test/support/naive-index.ts), while tampered evidence does not.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexDouble, policyText, OUTPUT_VKEY, INPUT_VKEY, type EntrySpec } from '../support/index-double.ts';
import { pkglog } from '../support/cli.ts';
import { naiveMapRoot } from '../support/naive-index.ts';
import { EXIT } from '../../core/errors.ts';
import { decodeLeaf } from '../../core/entry.ts';
import { parseIndexRevision } from '../../core/index-revision.ts';
import { parseIndexEvidence, formatIndexEvidence } from '../../core/index-evidence.ts';

const e = (name: string, version: string, publisher: number): EntrySpec => ({ name, version, filename: `${name}-${version}.tar.gz`, publisher });

describe('pkglog audit --index (test double)', function () {
  this.timeout(60_000);
  let dir: string;
  const dbl = new IndexDouble();
  const audit = (state: string) => pkglog(['audit', '--index', '--policy', join(dir, 'policy'), '--state-dir', state, '--json']);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pkglog-audit-index-'));
    dbl.addBatch([e('requests', '1.0', 1), e('flask', '1.0', 2)]);
    dbl.addBatch([e('requests', '1.1', 1)]);
    // Enough entries for a second entry bundle of the log (more than 256).
    dbl.addBatch(Array.from({ length: 300 }, (_, i) => e('many', `0.${i}`, 3)));
    dbl.addBatch([e('requests', '2.0', 4)]);
    await dbl.start();
    writeFileSync(join(dir, 'policy'), policyText(dbl.url));
  });
  after(async () => {
    await dbl.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an honest index: every revision map root matches the map rebuilt from the log', async () => {
    const r = await audit(join(dir, 'state-ok'));
    const j = JSON.parse(r.out);
    assert.equal(r.code, 0, r.out);
    assert.match(j.checks.find((c: { id: string }) => c.id === 'index').message, /rebuilt the map from 304 log entries: all 4 revision map roots match/);
  });

  it('a wrong map root: evidence file, exit 8; the evidence verifies independently, tampered evidence does not', async () => {
    const wrong = dbl.corruptRevision(2);
    const state = join(dir, 'state-bad');
    const r = await audit(state);
    assert.equal(r.code, EXIT.LOG_MISBEHAVED, r.out);
    const j = JSON.parse(r.out);
    assert.match(j.checks.find((c: { id: string }) => c.id === 'index').message, new RegExp(`index revision 2 has map root ${wrong.toString('hex')}, but the map of the log's first 303 entries has root [0-9a-f]{64}; evidence written to `));
    const files = readdirSync(join(state, 'evidence'));
    assert.equal(files.length, 1);
    const file = join(state, 'evidence', files[0]!);
    assert.equal(j.evidence, file);

    // With only the output log's key.
    const ok = await pkglog(['evidence', 'verify', file, '--log-vkey', OUTPUT_VKEY]);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /VALID index evidence: index log example\.com\/pkglog\/index signed revision 2 .* for the first 303 entries of example\.com\/pkglog/);

    // Independently: the leaves' naive map root (written from docs/index-format.md) is not the signed one.
    const ev = parseIndexEvidence(readFileSync(file));
    const rev = parseIndexRevision(ev.revisionLeaf);
    assert.ok(rev.mapRoot.equals(wrong));
    const naive = naiveMapRoot(ev.leaves.map((l) => decodeLeaf(l)));
    assert.ok(!naive.equals(rev.mapRoot));
    assert.ok(naive.equals(dbl.fixture.index.revisions[2]!.mapRoot), 'the naive rebuild is the honest map root');

    // Tampered: a leaf dropped, another key, the wrong key kind.
    const dropped = join(dir, 'dropped.json');
    writeFileSync(dropped, formatIndexEvidence({ ...ev, leaves: ev.leaves.slice(1) }));
    const bad = await pkglog(['evidence', 'verify', dropped, '--log-vkey', OUTPUT_VKEY]);
    assert.equal(bad.code, EXIT.VERIFY_FAILED);
    assert.match(bad.err, /INVALID evidence \(invalid_proof\): the evidence has 302 leaves, the revision covers 303/);
    const other = await pkglog(['evidence', 'verify', file, '--log-vkey', INPUT_VKEY]);
    assert.equal(other.code, EXIT.VERIFY_FAILED);
    assert.match(other.err, /INVALID evidence \(unknown_key\)/);
  });
});
