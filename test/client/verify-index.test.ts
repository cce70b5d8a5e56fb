/**
 * `pkglog verify` with a log that has a verifiable index (test/support/index-double.ts): key continuity from the
 * proven complete history, proven absence of another artifact for the same file, a second artifact found, an index
 * that does not verify failing the verification (never silently ignored), and --offline working from a tlog-proof.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { IndexDouble, policyText, REGISTRY_KEY_ARG, INPUT_VKEY, type EntrySpec } from '../support/index-double.ts';
import { pkglog } from '../support/cli.ts';
import { parseIndexBundle, formatIndexBundle } from '../../core/index-bundle.ts';
import { EXIT } from '../../core/errors.ts';
import { LogClient } from '../../client/http.ts';

const spec = (version: string, publisher: number, content?: string): EntrySpec => ({ name: 'requests', version, filename: `requests-${version}.tar.gz`, publisher, ...(content ? { content } : {}) });

describe('pkglog verify with the verifiable index (test double)', function () {
  this.timeout(60_000);
  const dbl = new IndexDouble();
  let dir: string;
  let policy: string;
  /** Writes the artifact of an entry spec (its content is what the double hashed) and returns the path. */
  const artifact = (s: EntrySpec) => {
    const path = join(dir, s.filename);
    writeFileSync(path, `content ${s.content ?? s.filename}`);
    return path;
  };
  const verify = (s: EntrySpec, index: number, extra: string[] = [], pol = policy) =>
    pkglog(['verify', artifact(s), '--ecosystem', 'pypi', '--name', 'requests', '--version', s.version, '--index', String(index), '--policy', pol, '--registry-key', REGISTRY_KEY_ARG, '--no-state', '--json', ...extra]);
  const check = (j: { checks: Array<{ id: string; status: string; message: string }> }, id: string) => j.checks.find((c) => c.id === id);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pkglog-verify-index-'));
    dbl.addBatch([spec('1.0', 1), spec('1.1', 1)]);
    dbl.addBatch([spec('2.0', 2), { name: 'other', version: '1', filename: 'other-1.tar.gz', publisher: 9 }]);
    await dbl.start();
    policy = join(dir, 'policy');
    writeFileSync(policy, policyText(dbl.url));
    // The artifact files are the sha256 preimages the double used.
    assert.equal(createHash('sha256').update('content requests-1.0.tar.gz').digest('hex'), dbl.fixture.entries[0]!.sha256);
  });
  after(async () => {
    await dbl.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    dbl.tamper = undefined;
  });

  it('proves the history complete: no other artifact for the file, same publisher key', async () => {
    const r = await verify(spec('1.1', 1), 1);
    const j = JSON.parse(r.out);
    assert.equal(r.code, 0, r.out);
    assert.match(check(j, 'index')!.message, /revision 1 proves the complete history of pypi\/requests among the first 4 entries: 3 entries/);
    assert.match(check(j, 'one-artifact')!.message, /proven: no other artifact for pypi\/requests 1\.1 requests-1\.1\.tar\.gz among the first 4 entries/);
    assert.equal(check(j, 'key-continuity')!.status, 'pass');
  });

  it('a publisher key change is found from the proven history (--strict-keys: exit 5)', async () => {
    const j = JSON.parse((await verify(spec('2.0', 2), 2)).out);
    assert.equal(check(j, 'key-continuity')!.status, 'warn');
    assert.match(check(j, 'key-continuity')!.message, /earlier entries of pypi\/requests are signed by 1 other key/);
    assert.equal((await verify(spec('2.0', 2), 2, ['--strict-keys'])).code, EXIT.KEY_CHANGE);
  });

  it('an index that does not verify fails the verification, with the reason', async () => {
    dbl.tamper = (p, body) => {
      if (!p.startsWith('/v1/index/pypi/requests')) return undefined;
      const b = parseIndexBundle(body);
      b.entries.pop();
      return Buffer.from(formatIndexBundle(b));
    };
    const r = await verify(spec('1.1', 1), 1);
    assert.equal(r.code, EXIT.VERIFY_FAILED, r.out);
    assert.match(check(JSON.parse(r.out), 'index')!.message, /the log's index does not prove the history of pypi\/requests: /);
  });

  it('a policy without the index key: warned, the history is not claimed proven', async () => {
    const onlyLog = join(dir, 'policy-log-only');
    writeFileSync(onlyLog, `log ${INPUT_VKEY} ${dbl.url}\nquorum none\n`);
    const j = JSON.parse((await verify(spec('1.1', 1), 1, [], onlyLog)).out);
    assert.equal(j.ok, true, JSON.stringify(j.checks));
    assert.match(check(j, 'index')!.message, /the policy has no key for the index's output log "example\.com\/pkglog\/index"/);
    assert.equal(check(j, 'one-artifact'), undefined);
  });

  it('--offline keeps working from a tlog-proof alone (no index request)', async () => {
    const proof = await new LogClient(dbl.url).entryProof(0);
    const proofFile = join(dir, 'p.tlog-proof');
    writeFileSync(proofFile, proof);
    dbl.requests.length = 0;
    const r = await pkglog(['verify', artifact(spec('1.0', 1)), '--ecosystem', 'pypi', '--name', 'requests', '--version', '1.0', '--proof', proofFile, '--offline', '--policy', policy, '--registry-key', REGISTRY_KEY_ARG, '--no-state', '--json']);
    assert.equal(r.code, 0, r.out);
    assert.equal(check(JSON.parse(r.out), 'key-continuity')!.status, 'skip');
    assert.deepEqual(dbl.requests, []);
  });
});

describe('pkglog verify: the index proves a second artifact for a file', function () {
  this.timeout(60_000);
  it('fails (exit 1) naming the other entry', async () => {
    const dbl = new IndexDouble();
    const dir = mkdtempSync(join(tmpdir(), 'pkglog-verify-index2-'));
    try {
      // A log that broke the one-artifact-per-file rule: two artifacts for requests-1.0.tar.gz.
      dbl.addBatch([spec('1.0', 1)]);
      dbl.addBatch([spec('1.0', 1, 'tampered')]);
      await dbl.start();
      const policy = join(dir, 'policy');
      writeFileSync(policy, policyText(dbl.url));
      const file = join(dir, 'requests-1.0.tar.gz');
      writeFileSync(file, 'content requests-1.0.tar.gz');
      const r = await pkglog(['verify', file, '--ecosystem', 'pypi', '--name', 'requests', '--version', '1.0', '--index', '0', '--policy', policy, '--registry-key', REGISTRY_KEY_ARG, '--no-state']);
      assert.equal(r.code, EXIT.VERIFY_FAILED, r.out);
      assert.match(r.out, /FAIL {2}one-artifact: the log has another artifact for pypi\/requests 1\.0 requests-1\.0\.tar\.gz: entry 1 \(sha256 [0-9a-f]{64}\)/);
    } finally {
      await dbl.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
