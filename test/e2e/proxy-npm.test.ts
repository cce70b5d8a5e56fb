/**
 * End to end with the real npm: an upstream npm registry (test/support/upstream-registry.ts, submitting each upload
 * to a real `pkglog serve`) → a real `pkglog proxy` process → `npm install --registry …` in a temporary project with
 * its own userconfig and cache. Cases: a good package installs (and the lockfile pins the logged sha512, leaf version
 * 2); a tarball replaced upstream after it was logged is refused with the reason npm prints (from the packument when
 * the upstream declares the new integrity, at download when it still declares the old); a package never logged is refused.
 * Against the log test double (witnesses with chosen clocks): with --min-age 90d the too-young version is skipped
 * and the older one installed; the log forking is refused with evidence.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { runPkglog, type Started } from '../support/process.ts';
import { tempDir } from '../client/helpers.ts';
import { UpstreamRegistry, buildNpmTarball, registryVkey, NPM_REGISTRY } from '../support/upstream-registry.ts';
import { npmProject } from '../support/installers.ts';
import type { LogDouble, TestWitness } from '../client/log-double.ts';
import { doubleAndUpstream, logAndUpstream, startProxy } from '../support/proxy-fixture.ts';
import { encodeLeaf, decodeLeaf } from '../../core/entry.ts';

function installed(project: string, name: string): string {
  return JSON.parse(readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8')).version;
}

const upload = (u: UpstreamRegistry, name: string, version: string, opts: { log?: boolean } = {}) =>
  u.upload({ ecosystem: 'npm', name, version, ...buildNpmTarball(name, version) }, opts);

describe('e2e: npm through pkglog proxy (real npm, real pkglog serve)', function () {
  this.timeout(180_000);
  let tmp: { dir: string; cleanup(): void };
  const procs: Started[] = [];
  let upstream: UpstreamRegistry;
  let proxy: Started;
  let registry = '';
  const d = (p: string) => join(tmp.dir, p);

  before(async () => {
    tmp = tempDir('pkglog-e2e-proxy-npm-');
    const started = await logAndUpstream(tmp.dir, NPM_REGISTRY, 'npm');
    procs.push(started.log);
    upstream = started.upstream;
    await upload(upstream, 'goodnpm', '1.0.0');
    await upload(upstream, 'swapped', '1.0.0');
    upstream.replace(buildNpmTarball('swapped', '1.0.0').filename, buildNpmTarball('swapped', '6.6.6').bytes, true);
    await upload(upstream, 'sneakynpm', '1.0.0');
    upstream.replace(buildNpmTarball('sneakynpm', '1.0.0').filename, buildNpmTarball('sneakynpm', '6.6.6').bytes, false);
    await upload(upstream, 'unloggednpm', '1.0.0', { log: false });
    proxy = await startProxy(tmp.dir, d('policy.txt'), upstream.url, ['npm']);
    procs.push(proxy);
    registry = `${proxy.url}/npm/`;
  });
  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGKILL');
    await upstream?.stop();
    tmp?.cleanup();
  });

  it('npm install of a logged package succeeds; the packument points through the proxy; the lockfile pins the logged digest', async () => {
    const npm = npmProject(d('good'));
    const r = await npm(['install', '--registry', registry, 'goodnpm']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(installed(d('good/project'), 'goodnpm'), '1.0.0');
    const lock = JSON.parse(readFileSync(d('good/project/package-lock.json'), 'utf8'));
    const pinned = lock.packages['node_modules/goodnpm'];
    const bytes = upstream.files.find((f) => f.name === 'goodnpm')!.bytes;
    // The logged native digest (leaf version 2, sha512), which the upstream's integrity agreed with.
    assert.equal(pinned.integrity, `sha512-${createHash('sha512').update(bytes).digest('base64')}`);
    assert.equal(pinned.resolved, `${proxy.url}/npm/goodnpm/-/goodnpm-1.0.0.tgz`);
    const doc = (await (await fetch(`${registry}goodnpm`)).json()) as { versions: Record<string, { dist: Record<string, string> }> };
    assert.equal(doc.versions['1.0.0']!.dist.shasum, undefined);
    assert.match(proxy.stderr(), /served npm\/goodnpm 1\.0\.0 goodnpm-1\.0\.0\.tgz \(entry 0\)/);
    // The lockfile npm wrote is checked against the log without downloading anything (sha512: leaf version 2).
    const check = runPkglog(['verify-lock', d('good/project/package-lock.json'), '--policy', d('policy.txt'), '--registry-key', registryVkey(NPM_REGISTRY), '--state-dir', d('lock-state'), '--json']);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.deepEqual(JSON.parse(check.stdout).summary, { artifacts: 1, verified: 1, failed: 0 });
  });

  it('a tarball replaced upstream after logging (new integrity declared) is refused: npm prints the 403 and the reason', async () => {
    const npm = npmProject(d('swapped'));
    const r = await npm(['install', '--registry', registry, 'swapped']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /403/);
    assert.match(r.stderr, /pkglog proxy: no version of swapped passes the checks: npm\/swapped 1\.0\.0 swapped-1\.0\.0\.tgz: the upstream integrity is sha512-\S+ but the log has sha512-\S+ \(entry 1\): the file was replaced after it was logged/);
    assert.ok(!existsSync(d('swapped/project/node_modules/swapped')));
    assert.match(proxy.stderr(), /refused npm\/swapped 1\.0\.0 swapped-1\.0\.0\.tgz/);
  });

  it('a tarball replaced upstream behind a stale integrity is refused at download: npm prints the 403 and the reason', async () => {
    const npm = npmProject(d('sneaky'));
    const r = await npm(['install', '--registry', registry, 'sneakynpm']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /403/);
    assert.match(r.stderr, /pkglog proxy: npm\/sneakynpm 1\.0\.0 sneakynpm-1\.0\.0\.tgz: the upstream file has sha256 [0-9a-f]{64} but the log has [0-9a-f]{64} \(entry 2\): the file was replaced after it was logged/);
    assert.ok(!existsSync(d('sneaky/project/node_modules/sneakynpm')));
  });

  it('a package never logged is refused: npm prints the 403 and the reason', async () => {
    const npm = npmProject(d('unlogged'));
    const r = await npm(['install', '--registry', registry, 'unloggednpm']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /403/);
    assert.match(r.stderr, /pkglog proxy: no version of unloggednpm passes the checks: npm\/unloggednpm 1\.0\.0 unloggednpm-1\.0\.0\.tgz is not in the log \(never logged\)/);
    assert.ok(!existsSync(d('unlogged/project/node_modules/unloggednpm')));
  });
});

describe('e2e: npm through pkglog proxy against a log double (min-age, fork)', function () {
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
    tmp = tempDir('pkglog-e2e-proxy-npm-double-');
    fixture = await doubleAndUpstream(tmp.dir, 'example.test/proxy-npm-log', now);
    ({ double, witness, upstream } = fixture);
    await upload(upstream, 'agenpm', '1.0.0'); // cosigned 100 days ago
    witness.clock = now;
    await upload(upstream, 'agenpm', '2.0.0'); // cosigned today (and upstream's latest)
    proxy = await startProxy(tmp.dir, d('policy.txt'), upstream.url, ['npm'], ['--min-age', '90d']);
  });
  after(async () => {
    await proxy?.stop('SIGKILL');
    await fixture?.stop();
    tmp?.cleanup();
  });

  it('--min-age 90d: the too-young 2.0.0 is left out, latest is 1.0.0, and npm installs it', async () => {
    const npm = npmProject(d('age'));
    const r = await npm(['install', '--registry', `${proxy!.url}/npm/`, 'agenpm']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(installed(d('age/project'), 'agenpm'), '1.0.0');
    const pinned = await npm(['install', '--registry', `${proxy!.url}/npm/`, 'agenpm@2.0.0']);
    assert.notEqual(pinned.code, 0);
    assert.match(pinned.stderr, /No matching version found for agenpm@2\.0\.0/);
    assert.match(proxy!.stderr(), /refused npm\/agenpm 2\.0\.0 agenpm-2\.0\.0\.tgz: .*min-age: entry 1 is not provably 90d old/);
  });

  it('a forked log is refused with the fork evidence saved', async () => {
    double.rewrite(0, encodeLeaf({ ...decodeLeaf(double.leaves[0]!), integratedTime: 1 }));
    await upload(upstream, 'agenpm', '3.0.0');
    await proxy!.stop('SIGKILL');
    proxy = await startProxy(tmp.dir, d('policy.txt'), upstream.url, ['npm']);
    const npm = npmProject(d('fork'));
    const r = await npm(['install', '--registry', `${proxy.url}/npm/`, 'agenpm@3.0.0']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /403.*pkglog proxy: .*FORK/);
    const evidenceDir = join(tmp.dir, 'proxy-state', 'evidence');
    assert.ok(existsSync(evidenceDir) && readdirSync(evidenceDir).length > 0, 'fork evidence saved');
    assert.match(proxy.stderr(), /"evidence":"[^"]*evidence[^"]*"/);
  });
});
