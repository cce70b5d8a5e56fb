/**
 * `pkglog history` against a test double of a log with a verifiable index (test/support/index-double.ts), which
 * sits between the client and the log: the proven history and key-change highlighting, pagination, state, and the
 * client failing with a clear message when the double (a) drops one entry from a bundle, (b) answers with another
 * package's bundle, (c) answers with an older revision than a checkpoint the client already holds, (d) flips any
 * byte of a bundle.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexDouble, policyText, REGISTRY_KEY_ARG, DOUBLE_POLICY, type EntrySpec } from '../support/index-double.ts';
import { pkglog } from '../support/cli.ts';
import { parseIndexBundle, formatIndexBundle } from '../../core/index-bundle.ts';
import { isPkglogError } from '../../core/errors.ts';
import { EXIT } from '../../core/errors.ts';
import { LogClient } from '../../client/http.ts';
import { StateStore } from '../../client/state.ts';
import { fetchHistory, type IndexSource } from '../../client/index-history.ts';

const req = (version: string, publisher = 1, extra = ''): EntrySpec => ({ name: 'requests', version, filename: `requests-${version}${extra}.tar.gz`, publisher });

describe('pkglog history (verifiable index, test double)', function () {
  this.timeout(60_000);
  const dbl = new IndexDouble();
  let dir: string;
  let policy: string;
  const run = (args: string[], state = join(dir, 'state')) =>
    pkglog(['history', ...args, '--policy', policy, '--registry-key', REGISTRY_KEY_ARG, '--state-dir', state]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pkglog-history-'));
    dbl.addBatch([req('1.0'), { name: 'flask', version: '1.0', filename: 'flask-1.0.tar.gz', publisher: 5 }, req('1.1')]);
    dbl.addBatch([req('2.0', 2), { name: 'flask', version: '1.1', filename: 'flask-1.1.tar.gz', publisher: 5 }]);
    // 130 entries of one package: three pages.
    dbl.addBatch(Array.from({ length: 130 }, (_, i) => ({ name: 'many', version: `0.${i}`, filename: `many-0.${i}.tar.gz`, publisher: 3 })));
    dbl.addBatch([req('2.1', 2)]);
    await dbl.start();
    policy = join(dir, 'policy');
    writeFileSync(policy, policyText(dbl.url));
  });
  after(async () => {
    await dbl.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    dbl.tamper = undefined;
    dbl.outputSize = undefined;
  });

  it('prints the proven complete history in log order and highlights the publisher key change', async () => {
    const r = await run(['pypi/requests']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /pypi\/requests: 4 entries \(index revision 3, log size 136\)/);
    const lines = r.out.split('\n').filter((l) => /entry \d+ {2}/.test(l));
    assert.deepEqual(lines.map((l) => Number(/entry (\d+)/.exec(l)![1])), [0, 2, 3, 135]);
    assert.match(lines[2]!, /^>> KEY CHANGE entry 3 {2}2\.0/);
    assert.ok(!lines[3]!.startsWith('>>'), 'the second entry by the new key is no change');
    assert.match(r.out, /WARN {2}key-continuity: PUBLISHER KEY CHANGE:/);
    assert.match(r.out, /4 entries below are proven to be all of pypi\/requests among the first 136 log entries/);
    const strict = await run(['pypi/requests', '--strict-keys']);
    assert.equal(strict.code, EXIT.KEY_CHANGE);
  });

  it('--json: machine output, --version, and proven absence', async () => {
    const j = JSON.parse((await run(['pypi/requests', '--version', '2.0', '--json'])).out);
    assert.equal(j.ok, true);
    assert.equal(j.count, 1);
    assert.equal(j.entries[0].index, 3);
    assert.equal(j.entries[0].version, '2.0');
    assert.equal(j.index.origin, 'example.com/pkglog/index');
    assert.deepEqual(j.index.cosigners.map((c: { witness: string }) => c.witness).sort(), ['W1', 'W2']);
    const absent = JSON.parse((await run(['pypi/absent', '--json'])).out);
    assert.equal(absent.ok, true);
    assert.equal(absent.count, 0);
    assert.deepEqual(absent.entries, []);
    assert.match(absent.checks.find((c: { id: string }) => c.id === 'complete').message, /proven: no entry of pypi\/absent/);
  });

  it('follows every page of a long history (all at one revision)', async () => {
    dbl.requests.length = 0;
    const j = JSON.parse((await run(['pypi/many', '--json'])).out);
    assert.equal(j.ok, true, JSON.stringify(j.checks));
    assert.equal(j.count, 130);
    assert.deepEqual(j.entries.map((e: { index: number }) => e.index), Array.from({ length: 130 }, (_, i) => 5 + i));
    assert.deepEqual(dbl.requests.filter((p) => p.startsWith('/v1/index/pypi/')), ['/v1/index/pypi/many', '/v1/index/pypi/many?cursor=3.1', '/v1/index/pypi/many?cursor=3.2']);
  });

  it('(a) a bundle with one entry dropped is refused', async () => {
    for (const [pkg, path] of [['pypi/requests', '/v1/index/pypi/requests'], ['pypi/many', '/v1/index/pypi/many?cursor=3.1']] as const) {
      dbl.tamper = (p, body) => {
        if (p !== path) return undefined;
        const b = parseIndexBundle(body);
        b.entries.splice(1, 1);
        return Buffer.from(formatIndexBundle(b));
      };
      const r = await run([pkg]);
      assert.equal(r.code, EXIT.VERIFY_FAILED, r.out);
      assert.match(r.out, /FAIL {2}index: the history of pypi\/(requests|many) is not proven: .*(page has|entries|list)/);
    }
  });

  it('(b) another package\'s bundle is refused', async () => {
    dbl.tamper = (p, _body, d) => (p === '/v1/index/pypi/requests' ? Buffer.from(d.fixture.bundleText({ kind: 'package', ecosystem: 'pypi', name: 'flask' })) : undefined);
    const r = await run(['pypi/requests']);
    assert.equal(r.code, EXIT.VERIFY_FAILED, r.out);
    assert.match(r.out, /the bundle is for another key/);
    // The other package's entries re-labelled as ours (bundle key rewritten) fail the map proof or the entries' keys.
    dbl.tamper = (p, _body, d) => {
      if (p !== '/v1/index/pypi/requests') return undefined;
      const b = d.fixture.bundle({ kind: 'package', ecosystem: 'pypi', name: 'flask' });
      b.key = parseIndexBundle(_body).key;
      return Buffer.from(formatIndexBundle(b));
    };
    const r2 = await run(['pypi/requests']);
    assert.equal(r2.code, EXIT.VERIFY_FAILED, r2.out);
    assert.match(r2.out, /index: the history of pypi\/requests is not proven: .*(map|not of)/);
  });

  it('(c) an older revision than the checkpoint the client already holds is a rollback (exit 4)', async () => {
    const state = join(dir, 'state-rollback');
    assert.equal((await run(['pypi/requests'], state)).code, 0);
    dbl.outputSize = 3;
    const r = await run(['pypi/requests'], state);
    assert.equal(r.code, EXIT.FORK, r.out);
    assert.match(r.out, /the index checkpoint \(size 3\) is older than the one already verified \(size 4\)/);
    // A fresh client has nothing to compare: the older revision verifies (and shows the older history).
    const fresh = await run(['pypi/requests', '--json'], join(dir, 'state-fresh'));
    assert.equal(JSON.parse(fresh.out).count, 3);
  });

  it('the saved index checkpoint advances by a proven consistency proof', async () => {
    const state = join(dir, 'state-advance');
    dbl.outputSize = 2;
    assert.equal((await run(['pypi/requests'], state)).code, 0);
    dbl.outputSize = undefined;
    const j = JSON.parse((await run(['pypi/requests', '--json'], state)).out);
    assert.equal(j.ok, true);
    assert.ok(j.checks.some((c: { message: string }) => /index checkpoint: checkpoint size 4 is consistent with the saved size 2; state advanced/.test(c.message)), JSON.stringify(j.checks));
    assert.equal(new StateStore(state).latest('example.com/pkglog/index')!.checkpoint.treeSize, 4);
  });

  it('(d) flipping any byte of a bundle makes the client fail', async () => {
    // The input log's checkpoint from memory (no HTTP per case): the cases differ only in the bundle.
    const log = new LogClient(dbl.url);
    const inputCheckpoint = dbl.inputCheckpoint();
    log.checkpoint = async () => inputCheckpoint;
    const good = Buffer.from(dbl.fixture.bundleText({ kind: 'package', ecosystem: 'pypi', name: 'requests' }));
    const query = { kind: 'package', ecosystem: 'pypi', name: 'requests' } as const;
    const ok = await fetchHistory({ log, policy: DOUBLE_POLICY, nowMs: Date.now(), source: { bundle: async () => good.toString('utf8') } }, query);
    assert.equal(ok.count, 4);
    const failures = new Map<string, number>();
    for (let i = 0; i < good.length; i++) {
      for (const mask of [i % 2 === 0 ? 0x01 : 0x20]) {
        const bad = Buffer.from(good);
        bad[i]! ^= mask;
        const source: IndexSource = { bundle: async () => bad.toString('utf8') };
        try {
          await fetchHistory({ log, policy: DOUBLE_POLICY, nowMs: Date.now(), source }, query);
          assert.fail(`byte ${i} ^ ${mask} (${JSON.stringify(String.fromCharCode(good[i]!))}) was accepted`);
        } catch (e) {
          if (!isPkglogError(e)) throw e;
          assert.ok(e.message.length > 10, `a clear message for byte ${i}: ${e.message}`);
          failures.set(e.code, (failures.get(e.code) ?? 0) + 1);
        }
      }
    }
    assert.ok(failures.size >= 3, `several kinds of failure: ${[...failures.keys()].join(', ')}`);
    // Through the CLI, a sample of positions: one clear line and a non-zero exit each.
    for (const i of [10, Math.floor(good.length / 3), Math.floor(good.length / 2), good.length - 30]) {
      dbl.tamper = (p, body) => {
        if (p !== '/v1/index/pypi/requests') return undefined;
        const b = Buffer.from(body);
        b[i]! ^= 0x01;
        return b;
      };
      const r = await run(['pypi/requests']);
      assert.notEqual(r.code, 0, `byte ${i}`);
      assert.match(r.out, /FAIL {2}index: the history of pypi\/requests is not proven: \S/);
    }
  });

  it('a log without an index: exit 7 with a clear message', async () => {
    dbl.tamper = undefined;
    const r = await pkglog(['history', 'pypi/requests', '--policy', policy, '--log', `${dbl.url}/nothing-here`, '--no-state']);
    assert.equal(r.code, EXIT.NETWORK, r.out + r.err);
  });
});
