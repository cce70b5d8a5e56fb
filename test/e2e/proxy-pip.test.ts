/**
 * End to end with the real pip: an upstream index (test/support/upstream-registry.ts, submitting each upload to a
 * real `pkglog serve`) → a real `pkglog proxy` process → `pip download` and `pip install` into a temporary venv.
 * Cases: a good package installs; a file replaced upstream after it was logged is refused (left off the index when
 * the upstream declares its new hash, refused with 403 and the reason when the upstream still declares the old
 * one); a version signed by a new publisher key is skipped (key continuity); a file never logged is refused.
 * Against the log test double (test/client/log-double.ts, witnesses with chosen clocks): a too-young version is
 * skipped and the older one installed (--min-age 90d); the log forking is refused with evidence. pip runs with no
 * configuration (PIP_CONFIG_FILE=/dev/null, --isolated): only the proxy.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Started } from '../support/process.ts';
import { tempDir } from '../client/helpers.ts';
import { UpstreamRegistry, buildWheel, PYPI_REGISTRY } from '../support/upstream-registry.ts';
import { pipDownload, pipInstall, makeVenv, run, pipEnv } from '../support/installers.ts';
import type { LogDouble, TestWitness } from '../client/log-double.ts';
import { doubleAndUpstream, logAndUpstream, startProxy } from '../support/proxy-fixture.ts';
import { keyPair } from '../support/submissions.ts';
import { encodeLeaf, decodeLeaf } from '../../core/entry.ts';

async function installedVersion(python: string, module: string): Promise<string> {
  const r = await run(python, ['-c', `import ${module}; print(${module}.VERSION)`], { env: pipEnv() });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

describe('e2e: pip through pkglog proxy (real pip, real pkglog serve)', function () {
  this.timeout(180_000);
  let tmp: { dir: string; cleanup(): void };
  const procs: Started[] = [];
  let upstream: UpstreamRegistry;
  let proxy: Started;
  let index = '';
  const d = (p: string) => join(tmp.dir, p);

  before(async () => {
    tmp = tempDir('pkglog-e2e-proxy-pip-');
    const started = await logAndUpstream(tmp.dir, PYPI_REGISTRY, 'pypi');
    procs.push(started.log);
    upstream = started.upstream;
    upstream.htmlOnly = true; // PEP 503 HTML upstream; the proxy answers pip in PEP 691 JSON
    for (const [name, version] of [['goodpkg', '1.0.0'], ['replaced', '1.0.0'], ['sneaky', '1.0.0']]) {
      await upstream.upload({ ecosystem: 'pypi', name: name!, version: version!, ...buildWheel(name!, version!) });
    }
    // Logged, then replaced upstream; the index declares the new hash.
    upstream.replace(buildWheel('replaced', '1.0.0').filename, buildWheel('replaced', '6.6.6').bytes, true);
    // Logged, then replaced upstream; the index still declares the logged hash.
    upstream.replace(buildWheel('sneaky', '1.0.0').filename, buildWheel('sneaky', '6.6.6').bytes, false);
    // 2.0.0 signed by another publisher key than 1.0.0 (a stolen upload credential with a new key).
    await upstream.upload({ ecosystem: 'pypi', name: 'keypkg', version: '1.0.0', ...buildWheel('keypkg', '1.0.0') });
    await upstream.upload({ ecosystem: 'pypi', name: 'keypkg', version: '2.0.0', ...buildWheel('keypkg', '2.0.0') }, { publisher: keyPair('mallory') });
    // Listed upstream, never logged.
    await upstream.upload({ ecosystem: 'pypi', name: 'unlogged', version: '1.0.0', ...buildWheel('unlogged', '1.0.0') }, { log: false });
    proxy = await startProxy(tmp.dir, d('policy.txt'), upstream.url, ['pypi', 'npm']);
    procs.push(proxy);
    index = `${proxy.url}/pypi/simple/`;
  });
  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGKILL');
    await upstream?.stop();
    tmp?.cleanup();
  });

  it('pip download and pip install of a logged package succeed, bytes identical to the upload', async () => {
    const r = await pipDownload(index, d('dl'), 'goodpkg');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const wheel = buildWheel('goodpkg', '1.0.0');
    assert.deepEqual(readdirSync(d('dl')), [wheel.filename]);
    assert.ok(readFileSync(join(d('dl'), wheel.filename)).equals(upstream.files.find((f) => f.filename === wheel.filename)!.bytes));
    const python = await makeVenv(d('venv'));
    const i = await pipInstall(python, index, 'goodpkg==1.0.0');
    assert.equal(i.code, 0, i.stdout + i.stderr);
    assert.equal(await installedVersion(python, 'goodpkg'), '1.0.0');
    assert.match(proxy.stderr(), /served pypi\/goodpkg 1\.0\.0 goodpkg-1\.0\.0-py3-none-any\.whl \(entry 0\)/);
  });

  it('a file replaced upstream (new hash declared) is left off the index and not installed', async () => {
    const r = await pipDownload(index, d('dl-replaced'), 'replaced');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No matching distribution found for replaced/);
    assert.ok(!existsSync(d('dl-replaced')) || readdirSync(d('dl-replaced')).length === 0);
    assert.match(proxy.stderr(), /refused pypi\/replaced 1\.0\.0 replaced-1\.0\.0-py3-none-any\.whl: .*the upstream file has sha256 [0-9a-f]{64} but the log has [0-9a-f]{64} \(entry 1\): the file was replaced after it was logged/);
  });

  it('a file replaced upstream behind a stale index hash is refused with 403 and the reason pip prints', async () => {
    const r = await pipDownload(index, d('dl-sneaky'), 'sneaky');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /403/);
    assert.match(r.stderr, /pkglog proxy: pypi\/sneaky 1\.0\.0 sneaky-1\.0\.0-py3-none-any\.whl: the upstream file has sha256 [0-9a-f]{64} but the log has [0-9a-f]{64}/);
    assert.ok(!existsSync(d('dl-sneaky')) || readdirSync(d('dl-sneaky')).length === 0);
    // The body is the one JSON error shape.
    const res = await fetch(`${proxy.url}/pypi/files/sneaky/sneaky-1.0.0-py3-none-any.whl`);
    assert.equal(res.status, 403);
    const body = (await res.json()) as { error: string; message: string; check: string };
    assert.equal(body.error, 'unverified');
    assert.equal(body.check, 'file-hash');
  });

  it('a version signed by another publisher key than the earlier ones is skipped (key continuity): pip gets 1.0.0', async () => {
    const python = await makeVenv(d('venv-key'));
    const i = await pipInstall(python, index, 'keypkg');
    assert.equal(i.code, 0, i.stdout + i.stderr);
    assert.equal(await installedVersion(python, 'keypkg'), '1.0.0');
    assert.match(proxy.stderr(), /refused pypi\/keypkg 2\.0\.0 keypkg-2\.0\.0-py3-none-any\.whl: .*key-continuity: publisher key changed: earlier entries of pypi\/keypkg are signed by 1 other key/);
  });

  it('a file never logged is not listed, and refused when asked for directly', async () => {
    const r = await pipDownload(index, d('dl-unlogged'), 'unlogged');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /No matching distribution found for unlogged/);
    const direct = await pipDownload(index, d('dl-unlogged'), `${proxy.url}/pypi/files/unlogged/unlogged-1.0.0-py3-none-any.whl`);
    assert.notEqual(direct.code, 0);
    assert.match(direct.stderr, /403.*pkglog proxy: pypi\/unlogged 1\.0\.0 unlogged-1\.0\.0-py3-none-any\.whl is not in the log \(never logged\)/);
    assert.match(proxy.stderr(), /refused pypi\/unlogged 1\.0\.0 unlogged-1\.0\.0-py3-none-any\.whl: .*never logged/);
  });
});

describe('e2e: pip through pkglog proxy against a log double (min-age, fork)', function () {
  this.timeout(180_000);
  let tmp: { dir: string; cleanup(): void };
  let fixture: Awaited<ReturnType<typeof doubleAndUpstream>> | undefined;
  let double: LogDouble;
  let witness: TestWitness;
  let upstream: UpstreamRegistry;
  let proxy: Started | undefined;
  const d = (p: string) => join(tmp.dir, p);
  const now = Math.floor(Date.now() / 1000);

  before(async () => {
    tmp = tempDir('pkglog-e2e-proxy-double-');
    fixture = await doubleAndUpstream(tmp.dir, 'example.test/proxy-log', now);
    ({ double, witness, upstream } = fixture);
    // 1.0.0 was cosigned 100 days ago; 2.0.0 today.
    await upstream.upload({ ecosystem: 'pypi', name: 'agepkg', version: '1.0.0', ...buildWheel('agepkg', '1.0.0') });
    witness.clock = now;
    await upstream.upload({ ecosystem: 'pypi', name: 'agepkg', version: '2.0.0', ...buildWheel('agepkg', '2.0.0') });
    proxy = await startProxy(tmp.dir, d('policy.txt'), upstream.url, ['pypi', 'npm'], ['--min-age', '90d']);
  });
  after(async () => {
    await proxy?.stop('SIGKILL');
    await fixture?.stop();
    tmp?.cleanup();
  });

  it('--min-age 90d: the too-young 2.0.0 is skipped and pip installs the older 1.0.0', async () => {
    const python = await makeVenv(d('venv'));
    const i = await pipInstall(python, `${proxy!.url}/pypi/simple/`, 'agepkg');
    assert.equal(i.code, 0, i.stdout + i.stderr);
    assert.equal(await installedVersion(python, 'agepkg'), '1.0.0');
    const pinned = await pipInstall(python, `${proxy!.url}/pypi/simple/`, 'agepkg==2.0.0');
    assert.notEqual(pinned.code, 0);
    assert.match(pinned.stderr, /from versions: 1\.0\.0/);
    assert.match(proxy!.stderr(), /refused pypi\/agepkg 2\.0\.0 agepkg-2\.0\.0-py3-none-any\.whl: .*min-age: entry 1 is not provably 90d old/);
  });

  it('a forked log is refused, with the fork evidence saved and named', async () => {
    // Rewrite history behind the proxy's back (entry 0 replaced), then log a new release.
    const e0 = { ...decodeLeaf(double.leaves[0]!), integratedTime: 1 };
    double.rewrite(0, encodeLeaf(e0));
    await upstream.upload({ ecosystem: 'pypi', name: 'agepkg', version: '3.0.0', ...buildWheel('agepkg', '3.0.0') });
    // The witness's history (min-age) still holds the old checkpoints; drop --min-age to isolate the fork.
    await proxy!.stop('SIGKILL');
    proxy = await startProxy(tmp.dir, d('policy.txt'), upstream.url, ['pypi', 'npm']);
    const r = await pipDownload(`${proxy.url}/pypi/simple/`, d('dl-fork'), `${proxy.url}/pypi/files/agepkg/agepkg-3.0.0-py3-none-any.whl`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /403.*pkglog proxy: .*FORK/);
    const evidenceDir = join(tmp.dir, 'proxy-state', 'evidence');
    assert.ok(existsSync(evidenceDir) && readdirSync(evidenceDir).length > 0, 'fork evidence saved');
    const log = proxy.stderr();
    assert.match(log, /refused pypi\/agepkg 3\.0\.0 .*FORK/);
    assert.match(log, /"evidence":"[^"]*evidence[^"]*"/);
    // Everything is refused from then on, even what verified before.
    const again = await pipDownload(`${proxy.url}/pypi/simple/`, d('dl-fork2'), 'agepkg==1.0.0');
    assert.notEqual(again.code, 0);
  });
});
