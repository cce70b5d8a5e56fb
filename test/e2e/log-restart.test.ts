/**
 * End to end through the user's path: `pkglog serve` as a real process on 127.0.0.1:0, configured by environment
 * variables, a registry added with `pkglog registry add`; submit, restart (also after SIGKILL), find everything there.
 */
import assert from 'node:assert/strict';
import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { leafHash } from '../../core/hash.ts';
import { verifyConsistency, verifyInclusion } from '../../core/merkle.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { REGISTRY, REGISTRY_NAME, submissionBody } from '../support/submissions.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { runPkglog, startProcess, type Started } from '../support/process.ts';
import { pkglog } from '../support/cli.ts';

async function submit(url: string, i: number) {
  const r = await fetch(`${url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(i)) });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as { index: number; proof: string };
}

describe('e2e: pkglog serve survives restarts', function () {
  this.timeout(60_000);
  let dir: string;
  let proc: Started | undefined;
  const env = () => ({ PKGLOG_DATA_DIR: dir, PKGLOG_LISTEN: '127.0.0.1:0', PKGLOG_ORIGIN: 'example.test/restart-log' });
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(async () => {
    await proc?.stop('SIGKILL');
    removeDir(dir);
  });

  it('keeps entries, checkpoint history and key across a restart and a crash', async () => {
    const add = runPkglog(['registry', 'add', REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), '--ecosystem', 'pypi'], env());
    assert.equal(add.status, 0, add.stderr);
    proc = await startProcess(['serve'], env());
    const vkey = proc.info.get('vkey')!;
    assert.equal(proc.info.get('origin'), 'example.test/restart-log');
    const verifier = parseVerifierKey(vkey);
    assert.equal(statSync(join(dir, 'log.key')).mode & 0o777, 0o600);
    assert.equal((await (await fetch(`${proc.url}/vkey`)).text()).trim(), vkey);

    const first = await Promise.all([0, 1, 2, 3].map((i) => submit(proc!.url, i)));
    const cp1text = await (await fetch(`${proc.url}/checkpoint`)).text();
    const cp1 = parseCheckpoint(verifyNote(cp1text, [verifier]).note.text);
    assert.equal(cp1.treeSize, 4);

    // graceful restart
    assert.equal(await proc.stop('SIGTERM'), 0);
    proc = await startProcess(['serve'], env());
    assert.equal(proc.info.get('vkey'), vkey, 'the same key is loaded, not regenerated');
    assert.equal(await (await fetch(`${proc.url}/checkpoint`)).text(), cp1text, 'the same checkpoint is served');
    const again = await submit(proc.url, 2);
    assert.equal(again.index, first[2]!.index, 'idempotency survives the restart');
    await submit(proc.url, 4);

    // crash: everything acknowledged is durable
    await proc.stop('SIGKILL');
    proc = await startProcess(['serve'], env());
    const cp2 = parseCheckpoint(verifyNote(await (await fetch(`${proc.url}/checkpoint`)).text(), [verifier]).note.text);
    assert.equal(cp2.treeSize, 5);
    const cons = (await (await fetch(`${proc.url}/v1/proof/consistency?old=4&size=5`)).json()) as { proof: string[] };
    verifyConsistency(4, 5, cp1.rootHash, cp2.rootHash, cons.proof.map((p) => Buffer.from(p, 'base64')));
    for (let i = 0; i < 4; i++) {
      const proof = parseTlogProof(first[i]!.proof);
      const old = parseCheckpoint(verifyNote(proof.checkpoint, [verifier]).note.text);
      verifyInclusion(proof.index, old.treeSize, leafHash(proof.extra!), proof.inclusionProof, old.rootHash);
      const older = await fetch(`${proc.url}/v1/checkpoints/${old.treeSize}`);
      assert.equal(older.status, 200, 'every checkpoint the log signed is kept');
    }
    const text = readFileSync(join(dir, 'registries.txt'), 'utf8');
    assert.match(text, /^pypi\.org /);
  });

  it('refuses a second log process on the same data dir', async () => {
    runPkglog(['registry', 'add', REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), '--ecosystem', 'pypi'], env());
    proc = await startProcess(['serve'], env());
    const second = runPkglog(['serve'], env());
    assert.notEqual(second.status, 0);
    assert.match(second.stderr, /in use by another pkglog process/);
    await submit(proc.url, 0); // the first one is unaffected
  });

  it('prints --help and refuses a bad listen address with a clear message (in-process)', async () => {
    const help = await pkglog(['serve', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /PKGLOG_DATA_DIR/);
    const bad = await pkglog(['serve', '--listen', 'nonsense'], { env: env() });
    assert.deepEqual(bad, { code: 2, out: '', err: 'pkglog serve: listen address "nonsense" must be host:port\n' });
  });
});
