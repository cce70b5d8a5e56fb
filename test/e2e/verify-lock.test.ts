/**
 * `pkglog verify-lock` end to end (real processes): `pkglog submit` logs npm tarballs with their sha512 (leaf
 * version 2) and wheels with sha256 into a real `pkglog serve` cosigned by a real `pkglog witness`; then
 * package-lock.json (v3 and v2) and requirements.txt files are checked: all verified (and remembered: the second
 * run is served from the state directory), a tampered pin, a package never logged, a pin without a hash, --min-age
 * (too young now, old enough at a later --at), a lockfile version 1, --json.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, type Started } from '../support/process.ts';
import { tempDir, runAsync } from '../client/helpers.ts';

const ORIGIN = 'example.test/lock-log';

describe('e2e: pkglog verify-lock (requirements.txt and package-lock.json)', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup(): void };
  const procs: Started[] = [];
  let logURL = '';
  let regVkey = '';
  const d = (p: string) => join(tmp.dir, p);
  const files = new Map<string, Buffer>();
  const ok = async (args: string[]) => {
    const r = await runAsync(args);
    assert.equal(r.code, 0, `pkglog ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const lockCheck = (file: string, extra: string[] = []) =>
    runAsync(['verify-lock', d(file), '--policy', d('policy.txt'), '--registry-key', regVkey, '--state-dir', d('state'), ...extra]);
  const sri = (alg: string, b: Buffer) => `${alg}-${createHash(alg).update(b).digest('base64')}`;
  const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  before(async () => {
    tmp = tempDir('pkglog-e2e-verify-lock-');
    const logVkey = (await ok(['keygen', '--name', ORIGIN, '--out', d('log.key')])).stdout.trim();
    regVkey = (await ok(['keygen', '--name', 'registry.example', '--out', d('registry.key')])).stdout.trim();
    await ok(['keygen', '--name', 'alice', '--out', d('alice.key')]);
    await ok(['witness', 'add-log', ORIGIN, logVkey, '--data-dir', d('w0')]);
    const w = await startProcess(['witness', '--data-dir', d('w0'), '--listen', '127.0.0.1:0', '--name', 'w0.example.test']);
    procs.push(w);
    await ok(['registry', 'add', 'registry.example', regVkey, '--ecosystem', 'pypi,npm', '--data-dir', d('log')]);
    await ok(['witnesses', 'add', w.url, w.info.get('vkey')!, '--data-dir', d('log')]);
    const log = await startProcess(['serve', '--data-dir', d('log'), '--listen', '127.0.0.1:0', '--key-file', d('log.key'), '--batch-interval', '20', '--witness-quorum', '1']);
    procs.push(log);
    logURL = log.url;
    writeFileSync(d('policy.txt'), `log ${logVkey} ${logURL}\nwitness w0 ${w.info.get('vkey')} ${w.url}\nquorum w0\n`);
    const up = async (eco: string, name: string, version: string, filename: string) => {
      const bytes = Buffer.from(`${eco} ${name} ${version}\n`);
      writeFileSync(d(filename), bytes);
      files.set(filename, bytes);
      await ok(['submit', d(filename), '--ecosystem', eco, '--name', name, '--version', version, '--publisher-key', d('alice.key'), '--registry-key', d('registry.key'), '--log', logURL]);
    };
    await up('npm', 'left-pad', '1.3.0', 'left-pad-1.3.0.tgz');
    await up('npm', '@scope/util', '2.0.0', 'util-2.0.0.tgz');
    await up('npm', 'tiny', '0.1.0', 'tiny-0.1.0.tgz');
    await up('pypi', 'requests', '2.32.3', 'requests-2.32.3-py3-none-any.whl');
    await up('pypi', 'requests', '2.32.3', 'requests-2.32.3.tar.gz');
    await up('pypi', 'idna', '3.7', 'idna-3.7-py3-none-any.whl');
  });
  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGKILL');
    tmp?.cleanup();
  });

  const packageLock = (version: number, pkgs: Record<string, { version: string; integrity: string }>) =>
    JSON.stringify({
      name: 'app', version: '1.0.0', lockfileVersion: version, requires: true,
      packages: {
        '': { name: 'app', version: '1.0.0', dependencies: Object.fromEntries(Object.entries(pkgs).map(([n, p]) => [n, p.version])) },
        ...Object.fromEntries(Object.entries(pkgs).map(([n, p]) => [`node_modules/${n}`, { version: p.version, resolved: `https://registry.npmjs.org/${n}/-/x.tgz`, integrity: p.integrity }])),
        'node_modules/linked': { resolved: '../linked', link: true },
      },
    }, null, 2);

  it('pkglog submit logs npm tarballs with their sha512 as the native digest (leaf version 2), wheels without', async () => {
    const npmEntry = (await (await fetch(`${logURL}/v1/entries/0`)).json()) as Record<string, any>;
    assert.equal(npmEntry.filename, 'left-pad-1.3.0.tgz');
    assert.deepEqual(npmEntry.nativeDigest, { algorithm: 'sha512', digest: createHash('sha512').update(files.get('left-pad-1.3.0.tgz')!).digest('base64') });
    assert.equal(Buffer.from(npmEntry.leaf, 'base64')[0], 2);
    const pypiEntry = (await (await fetch(`${logURL}/v1/entries/3`)).json()) as Record<string, any>;
    assert.equal(pypiEntry.nativeDigest, undefined);
    assert.equal(Buffer.from(pypiEntry.leaf, 'base64')[0], 1);
  });

  it('a package-lock.json v3 whose sha512 pins are all logged verifies; the second run is remembered', async () => {
    writeFileSync(d('package-lock.json'), packageLock(3, {
      'left-pad': { version: '1.3.0', integrity: sri('sha512', files.get('left-pad-1.3.0.tgz')!) },
      '@scope/util': { version: '2.0.0', integrity: sri('sha512', files.get('util-2.0.0.tgz')!) },
      tiny: { version: '0.1.0', integrity: `${sri('sha1', files.get('tiny-0.1.0.tgz')!)} ${sri('sha512', files.get('tiny-0.1.0.tgz')!)}` },
    }));
    const r = await lockCheck('package-lock.json', ['--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.summary, { artifacts: 3, verified: 3, failed: 0 });
    assert.deepEqual(j.artifacts.map((a: any) => [a.id, a.index]), [['left-pad@1.3.0', 0], ['@scope/util@2.0.0', 1], ['tiny@0.1.0', 2]]);
    const again = await lockCheck('package-lock.json', ['--json']);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.ok(JSON.parse(again.stdout).artifacts.every((a: any) => a.cached === true));
    const human = await lockCheck('package-lock.json');
    assert.match(human.stdout, /^pkglog verify-lock .*package-lock\.json \(package-lock: 3 of 3 artifacts verified\)/);
    assert.match(human.stdout, /VERIFIED\n$/);
  });

  it('package-lock.json: a tampered integrity and a package never logged fail (exit 1), named in one report', async () => {
    writeFileSync(d('bad-lock.json'), packageLock(2, {
      'left-pad': { version: '1.3.0', integrity: sri('sha512', Buffer.from('something else')) },
      tiny: { version: '0.1.0', integrity: sri('sha512', files.get('tiny-0.1.0.tgz')!) },
      'never-logged': { version: '1.0.0', integrity: sri('sha512', Buffer.from('x')) },
    }));
    const r = await lockCheck('bad-lock.json', ['--json']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.summary, { artifacts: 3, verified: 1, failed: 2 });
    const by = Object.fromEntries(j.artifacts.map((a: any) => [a.id, a]));
    assert.match(by['left-pad@1.3.0'].message, /npm\/left-pad 1\.3\.0 is logged \(left-pad-1\.3\.0\.tgz, entry 0\) but with another sha512: the pinned file is not the published one/);
    assert.equal(by['tiny@0.1.0'].ok, true);
    assert.match(by['never-logged@1.0.0'].message, /not in the log: no entry for npm\/never-logged 1\.0\.0/);
  });

  it('requirements.txt with --hash=sha256 pins (continuation lines, several files per version) verifies; a wrong hash and a missing hash fail', async () => {
    writeFileSync(d('requirements.txt'), [
      '# pip-compile --generate-hashes',
      `requests==2.32.3 \\`,
      `    --hash=sha256:${hex(files.get('requests-2.32.3-py3-none-any.whl')!)} \\`,
      `    --hash=sha256:${hex(files.get('requests-2.32.3.tar.gz')!)}`,
      `IDNA==3.7 --hash=sha256:${hex(files.get('idna-3.7-py3-none-any.whl')!)}  # via requests`,
      '',
    ].join('\n'));
    const r = await lockCheck('requirements.txt', ['--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).summary, { artifacts: 3, verified: 3, failed: 0 });
    writeFileSync(d('bad-requirements.txt'), `requests==2.32.3 --hash=sha256:${'0'.repeat(64)}\nidna==3.7\n`);
    const bad = await lockCheck('bad-requirements.txt', ['--json']);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    const j = JSON.parse(bad.stdout);
    assert.deepEqual(j.summary, { artifacts: 2, verified: 0, failed: 2 });
    assert.ok(j.artifacts.some((a: any) => /idna==3\.7 has no --hash pin/.test(a.message)));
    assert.ok(j.artifacts.some((a: any) => /pypi\/requests 2\.32\.3 is logged .* but with another sha256/.test(a.message)));
  });

  it('--min-age 90d: too young now (exit 6); old enough as of 100 days later', async () => {
    const young = await lockCheck('requirements.txt', ['--min-age', '90d', '--json']);
    assert.equal(young.code, 6, young.stdout + young.stderr);
    assert.match(JSON.parse(young.stdout).artifacts[0].message, /min-age: entry \d+ is not provably 90d old/);
    const later = await lockCheck('requirements.txt', ['--min-age', '90d', '--at', String(Math.floor(Date.now() / 1000) + 100 * 86400)]);
    assert.equal(later.code, 0, later.stdout + later.stderr);
  });

  it('a lockfile version 1 and a file that is not a lockfile are usage errors (exit 2), one line', async () => {
    writeFileSync(d('old-lock.json'), JSON.stringify({ lockfileVersion: 1, dependencies: {} }));
    const r = await lockCheck('old-lock.json');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^pkglog verify-lock: .*old-lock\.json: lockfileVersion 1 \(npm 6\) has no "packages" map/);
    writeFileSync(d('junk.txt'), 'this is not a requirement\n');
    const j = await lockCheck('junk.txt');
    assert.equal(j.code, 2);
    assert.match(j.stderr, /line 1: not a pinned requirement/);
  });
});
