/**
 * End to end through real processes on 127.0.0.1: `pkglog serve` with two `pkglog witness` processes cosigning,
 * keys from `pkglog keygen`, uploads with `pkglog submit`, and `pkglog verify`/`proof` — online, offline, and every
 * failure with its exit code (tampered file, wrong package, bad proof, no quorum, stale, fork, key change, too young).
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTlogProof, formatTlogProof } from '../../core/tlog-proof.ts';
import { startProcess, type Started } from '../support/process.ts';
import { tempDir, runAsync } from '../client/helpers.ts';

const ORIGIN = 'example.test/e2e-log';

describe('e2e: pkglog verify against a real log and witnesses', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup(): void };
  const procs: Started[] = [];
  let logURL = '';
  let logVkey = '';
  let policyFile = '';
  let registryVkey = '';
  const d = (p: string) => join(tmp.dir, p);
  const pk = (args: string[]) => runAsync(args);
  const ok = async (args: string[]) => {
    const r = await pk(args);
    assert.equal(r.code, 0, `pkglog ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const file = (name: string, content: string) => {
    writeFileSync(d(name), content);
    return d(name);
  };

  before(async () => {
    tmp = tempDir('pkglog-e2e-client-');
    // Keys: the log's (its name is the origin), a registry, two publishers.
    logVkey = (await ok(['keygen', '--name', ORIGIN, '--out', d('log.key')])).stdout.trim();
    registryVkey = (await ok(['keygen', '--name', 'pypi.org', '--out', d('registry.key')])).stdout.trim();
    await ok(['keygen', '--name', 'alice', '--out', d('alice.key')]);
    await ok(['keygen', '--name', 'mallory', '--out', d('mallory.key')]);
    // Two witnesses that know the log.
    const witnesses: Array<{ url: string; vkey: string }> = [];
    for (const w of ['w0', 'w1']) {
      await ok(['witness', 'add-log', ORIGIN, logVkey, '--data-dir', d(w)]);
      const p = await startProcess(['witness', '--data-dir', d(w), '--listen', '127.0.0.1:0', '--name', `${w}.example.test`]);
      procs.push(p);
      witnesses.push({ url: p.url, vkey: p.info.get('vkey')! });
    }
    await ok(['registry', 'add', 'pypi.org', registryVkey, '--ecosystem', 'pypi', '--data-dir', d('log')]);
    for (const w of witnesses) await ok(['witnesses', 'add', w.url, w.vkey, '--data-dir', d('log')]);
    const log = await startProcess(['serve', '--data-dir', d('log'), '--listen', '127.0.0.1:0', '--key-file', d('log.key'), '--batch-interval', '20']);
    procs.push(log);
    logURL = log.url;
    assert.equal(log.info.get('vkey'), logVkey);
    policyFile = file(
      'policy',
      `log ${logVkey} ${logURL}\n` +
        witnesses.map((w, i) => `witness w${i} ${w.vkey} ${w.url}\n`).join('') +
        'group both all w0 w1\nquorum both\n',
    );
  });
  after(async () => {
    for (const p of procs.reverse()) await p.stop('SIGKILL');
    tmp?.cleanup();
  });

  /** Waits until the log's checkpoint of at least `size` carries both cosignatures. */
  async function cosigned(size: number): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const cp = await (await fetch(`${logURL}/checkpoint`)).text();
      const n = Number(cp.split('\n')[1]);
      if (n >= size && (cp.match(/^— /gm) ?? []).length >= 3) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`the checkpoint of size ${size} was not cosigned in time`);
  }

  const submit = (f: string, version: string, publisher = 'alice.key', extra: string[] = []) =>
    pk(['submit', f, '--ecosystem', 'pypi', '--name', 'demo', '--version', version, '--publisher-key', d(publisher), '--registry-key', d('registry.key'), '--log', logURL, ...extra]);
  const verify = (f: string, version: string, extra: string[] = [], state = d('state')) =>
    pk(['verify', f, '--ecosystem', 'pypi', '--name', 'demo', '--version', version, '--policy', policyFile, '--registry-key', registryVkey, '--state-dir', state, ...extra]);

  let wheel = '';
  it('submits with keys from keygen and verifies online and offline', async () => {
    wheel = file('demo-1.0.whl', 'demo 1.0 wheel');
    const s = await submit(wheel, '1.0');
    assert.equal(s.code, 0, s.stdout + s.stderr);
    assert.match(s.stdout, /^logged pypi\/demo 1\.0 demo-1\.0\.whl as entry 0 \(sha256 [0-9a-f]{64}\)\n/);
    await cosigned(1);
    const again = await submit(wheel, '1.0');
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /^pypi\/demo 1\.0 demo-1\.0\.whl is already logged as entry 0 \(sha256 [0-9a-f]{64}\)\ntlog-proof written to /);
    const online = await verify(wheel, '1.0');
    assert.equal(online.code, 0, online.stdout + online.stderr);
    assert.match(online.stdout, /cosigned by w0 at .*, w1 at/);
    // A proof fetched for publication verifies with no network at all.
    const p = await pk(['proof', wheel, '--ecosystem', 'pypi', '--name', 'demo', '--version', '1.0', '--policy', policyFile, '--registry-key', registryVkey, '--state-dir', d('state'), '--out', d('demo.tlog-proof')]);
    assert.equal(p.code, 0, p.stdout + p.stderr);
    const offline = await verify(wheel, '1.0', ['--proof', d('demo.tlog-proof'), '--offline', '--json'], d('fresh-state'));
    assert.equal(offline.code, 0, offline.stdout);
    assert.equal(JSON.parse(offline.stdout).checkpoint.cosigners.length, 2);
  });

  it('refuses a second artifact for the same file (409, exit 1)', async () => {
    const other = file('demo-1.0.whl.evil', 'evil');
    const r = await submit(other, '1.0', 'alice.key', ['--filename', 'demo-1.0.whl']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /already has a different artifact/);
  });

  it('fails a tampered file, a wrong package and a bad proof with exit 1', async () => {
    const tampered = file('demo-1.0.whl', 'demo 1.0 wheel, tampered');
    try {
      const r = await verify(tampered, '1.0', ['--proof', d('demo.tlog-proof')]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /FAIL  file-hash/);
      const online = await verify(tampered, '1.0');
      assert.equal(online.code, 1, online.stdout);
    } finally {
      file('demo-1.0.whl', 'demo 1.0 wheel');
    }
    const wrong = await verify(wheel, '2.0', ['--proof', d('demo.tlog-proof')]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stdout, /version is "1.0", expected "2.0"/);
    const proof = parseTlogProof(readFileSync(d('demo.tlog-proof')));
    proof.index = proof.index + 1;
    writeFileSync(d('bad.tlog-proof'), formatTlogProof(proof));
    const bad = await verify(wheel, '1.0', ['--proof', d('bad.tlog-proof')]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stdout, /FAIL  inclusion/);
  });

  it('fails a checkpoint without quorum and a stale checkpoint with exit 3', async () => {
    // A policy that also requires a third witness nobody runs.
    const third = (await ok(['keygen', '--name', 'w2.example.test', '--cosigner', '--out', d('w2.key')])).stdout.trim();
    const strict = file('policy-3', readFileSync(policyFile, 'utf8').replace('group both all w0 w1', `witness w2 ${third}\ngroup both all w0 w1 w2`));
    const r = await pk(['verify', wheel, '--ecosystem', 'pypi', '--name', 'demo', '--version', '1.0', '--policy', strict, '--registry-key', registryVkey, '--state-dir', d('state')]);
    assert.equal(r.code, 3, r.stdout);
    assert.match(r.stdout, /does not meet the policy quorum/);
    const stale = await verify(wheel, '1.0', ['--proof', d('demo.tlog-proof'), '--max-age', '1h', '--at', String(Math.floor(Date.now() / 1000) + 7200)]);
    assert.equal(stale.code, 3, stale.stdout);
    assert.match(stale.stdout, /checkpoint is stale/);
  });

  it('warns about a publisher key change and fails it with --strict-keys (exit 5)', async () => {
    const w2 = file('demo-2.0.whl', 'demo 2.0 wheel');
    assert.equal((await submit(w2, '2.0', 'mallory.key')).code, 0);
    await cosigned(2);
    const warn = await verify(w2, '2.0');
    assert.equal(warn.code, 0, warn.stdout);
    assert.match(warn.stdout, /WARN  key-continuity: publisher key changed/);
    const strict = await verify(w2, '2.0', ['--strict-keys']);
    assert.equal(strict.code, 5, strict.stdout);
  });

  it('fails a too-young artifact with exit 6 and proves age from the witnesses\' history', async () => {
    const young = await verify(wheel, '1.0', ['--min-age', '90d']);
    assert.equal(young.code, 6, young.stdout);
    assert.match(young.stdout, /not provably 90d old/);
    // 100 days from now, the witnesses' cosignatures of today are old enough.
    const later = await verify(wheel, '1.0', ['--min-age', '90d', '--at', String(Math.floor(Date.now() / 1000) + 100 * 86400), '--json']);
    assert.equal(later.code, 0, later.stdout);
    assert.equal(JSON.parse(later.stdout).minAge.filter((w: { ok: boolean }) => w.ok).length, 2);
  });

  it('gossips the checkpoint to the witnesses', async () => {
    const r = await verify(wheel, '1.0', ['--gossip']);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /ok {4}gossip/);
  });

  it('detects a forked log (same key, different history) with exit 4 and evidence the witness tool accepts', async () => {
    // A second log process with the same key and origin but its own history: a split view.
    await ok(['registry', 'add', 'pypi.org', registryVkey, '--ecosystem', 'pypi', '--data-dir', d('fork')]);
    // The operator's equivocating double: the same key in another file (the log's own key file carries its high-water
    // mark, which would refuse a second history next to it).
    copyFileSync(d('log.key'), d('fork.key'));
    const fork = await startProcess(['serve', '--data-dir', d('fork'), '--listen', '127.0.0.1:0', '--key-file', d('fork.key'), '--batch-interval', '20']);
    procs.push(fork);
    const evil = file('evil-demo.whl', 'evil demo 1.0');
    const forkSubmit = await pk(['submit', evil, '--ecosystem', 'pypi', '--name', 'demo', '--version', '1.0', '--filename', 'demo-1.0.whl', '--publisher-key', d('mallory.key'), '--registry-key', d('registry.key'), '--log', fork.url]);
    assert.equal(forkSubmit.code, 0, forkSubmit.stderr);
    for (const i of [1, 2, 3]) assert.equal((await pk(['submit', file(`f${i}`, `f${i}`), '--ecosystem', 'pypi', '--name', 'filler', '--version', `${i}`, '--publisher-key', d('mallory.key'), '--registry-key', d('registry.key'), '--log', fork.url])).code, 0);
    const keyOnly = ['--log-key', logVkey, '--log', fork.url];
    const r = await pk(['verify', evil, '--ecosystem', 'pypi', '--name', 'demo', '--version', '1.0', '--filename', 'demo-1.0.whl', ...keyOnly, '--registry-key', registryVkey, '--state-dir', d('state'), '--json']);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(readdirSync(join(d('state'), 'evidence')).length >= 1);
    const ev = await pk(['evidence', 'verify', j.evidence, '--log-vkey', logVkey]);
    assert.equal(ev.code, 0, ev.stdout + ev.stderr);
  });
});
