/**
 * Issue 8: a public key is accepted wherever one is asked for, in the forms keygen prints (vkey) and bare base64;
 * a private key (file or content) where a public key is expected is named as such. In-process client CLIs, and
 * real processes for the log's and the witness's commands.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogDouble, TestWitness, makeEntry, fileSha, REGISTRY_VKEY } from './log-double.ts';
import { cli, tempDir, writeFile } from './helpers.ts';
import { pkglog } from '../support/cli.ts';
import { parseSignerKeyFields, parseVerifierKey } from '../../core/note.ts';
import { keyPairFromSeed } from '../../core/ed25519.ts';

const T0 = 1_750_000_000;
const PRIVATE = /private key.*pass the public key \(vkey\) that keygen printed/;

describe('public keys on every command line', function () {
  this.timeout(120_000);
  let tmp: { dir: string; cleanup(): void };
  let log: LogDouble;
  let policy: string;
  let state: string;
  let aliceVkey = '';
  let aliceKeyFile = '';
  beforeEach(async () => {
    tmp = tempDir('pkglog-keys-test-');
    aliceKeyFile = join(tmp.dir, 'alice.key');
    const kg = await cli(['keygen', '--name', 'alice', '--out', aliceKeyFile]);
    assert.equal(kg.code, 0, kg.err);
    aliceVkey = kg.out.trim();
    const alice = keyPairFromSeed(parseSignerKeyFields(readFileSync(aliceKeyFile, 'utf8').trim()).seed);
    log = new LogDouble();
    log.witnesses = [new TestWitness('w0.test', T0)];
    await log.listen();
    log.append([0, 1, 2].map((i) => makeEntry({ ecosystem: 'pypi', name: `p${i}`, version: '1.0', filename: `p${i}-1.0.tar.gz`, sha256: fileSha(`${i}`) }, T0 * 1000)));
    log.append([makeEntry({ ecosystem: 'pypi', name: 'alices', version: '1.0', filename: 'alices-1.0.tar.gz', sha256: fileSha('a') }, T0 * 1000, alice)]);
    log.publish();
    policy = writeFile(tmp.dir, 'policy', log.policy());
    state = join(tmp.dir, 'state');
  });
  afterEach(async () => {
    await log.close();
    tmp.cleanup();
  });

  const monitorIn = (stateDir: string, ...extra: string[]) => cli(['monitor', '--log', log.url, '--policy', policy, '--registry-key', REGISTRY_VKEY, '--state-dir', stateDir, '--quiet', '--json', ...extra]);
  const monitor = (...extra: string[]) => monitorIn(state, ...extra);

  it('--watch-key takes the vkey keygen printed, bare base64, or a file holding the vkey: the same report', async () => {
    const b64 = parseVerifierKey(aliceVkey).publicKey.toString('base64');
    const vkeyFile = writeFile(tmp.dir, 'alice.pub', `${aliceVkey}\n`);
    for (const form of [aliceVkey, b64, vkeyFile]) {
      const r = await monitorIn(join(tmp.dir, `state-${form.length}`), '--watch-key', form);
      assert.equal(r.code, 0, r.out + r.err);
      const watched = r.json().events.filter((e: any) => e.kind === 'watched-entry');
      assert.deepEqual(watched.map((e: any) => [e.index, e.package]), [[3, 'pypi/alices']], `--watch-key ${form}`);
      assert.ok(watched[0].message.includes(`signed by ${b64}`));
    }
  });

  it('a private key where a public key is expected is named as such (key file path or its content)', async () => {
    const skey = readFileSync(aliceKeyFile, 'utf8').trim();
    // The secret is the whole key field base64(type ‖ seed), which may itself hold '+' (PRIVATE+KEY+name+keyId+field):
    // `skey.split('+').pop()` was only its tail after the last '+' — empty for ~1.5% of keys (then `includes('')`
    // failed the test), a few characters for ~5% more. Check the whole field and the seed in base64 and hex.
    const keyField = skey.split('+').slice(4).join('+');
    const seed = parseSignerKeyFields(skey).seed;
    const secrets = [keyField, seed.toString('base64'), seed.toString('hex')];
    assert.ok(keyField.length >= 44, keyField);
    for (const args of [
      ['--watch-key', aliceKeyFile],
      ['--watch-key', skey],
    ]) {
      const r = await monitor(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}${r.err}`);
      assert.match(r.out + r.err, PRIVATE);
      assert.doesNotMatch(r.out + r.err, /at .*\.ts:\d+/, 'no stack trace');
      for (const secret of secrets) assert.ok(!(r.out + r.err).includes(secret), 'the secret is never echoed');
    }
    const registry = await cli(['audit', '--log', log.url, '--policy', policy, '--registry-key', aliceKeyFile, '--state-dir', state, '--quiet']);
    assert.equal(registry.code, 2, registry.out + registry.err);
    assert.match(registry.out + registry.err, /--registry-key file .*alice\.key is a private key file; pass the public key \(vkey\)/);
    const logKey = await cli(['audit', '--log', log.url, '--log-key', aliceKeyFile, '--state-dir', state, '--quiet']);
    assert.equal(logKey.code, 2, logKey.out + logKey.err);
    assert.match(logKey.out + logKey.err, /--log-key: .*alice\.key is a private key file/);
    const badPolicy = writeFile(tmp.dir, 'bad-policy', `log ${skey} ${log.url}\nquorum none\n`);
    const pol = await cli(['audit', '--log', log.url, '--policy', badPolicy, '--state-dir', state, '--quiet']);
    assert.notEqual(pol.code, 0);
    assert.match(pol.out + pol.err, /bad-policy.*the log key: this is a private key/);
  });

  it('--log-key and --registry-key take a key file holding the vkey; --registry-key NAME=<base64>', async () => {
    const logKeyFile = writeFile(tmp.dir, 'log.pub', `${log.vkey}\n`);
    const registryB64 = parseVerifierKey(REGISTRY_VKEY).publicKey.toString('base64');
    const r = await cli(['audit', '--log', log.url, '--log-key', logKeyFile, '--registry-key', `pypi.org=${registryB64}`, '--state-dir', state, '--quiet', '--json']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.equal(r.json().entries, 4);
  });

  it('the log and the witness commands: vkey and base64 accepted, a private key named (exit 2, one line)', async () => {
    const registryKey = join(tmp.dir, 'registry.key');
    const registryVkey = (await pkglog(['keygen', '--name', 'pypi.org', '--out', registryKey])).out.trim();
    const b64 = parseVerifierKey(registryVkey).publicKey.toString('base64');
    const data = join(tmp.dir, 'logdata');
    assert.equal((await pkglog(['registry', 'add', 'pypi.org', registryVkey, '--ecosystem', 'pypi', '--data-dir', data])).code, 0);
    const add2 = await pkglog(['registry', 'add', 'npm', b64, '--ecosystem', 'npm', '--data-dir', data]);
    assert.equal(add2.code, 0, add2.err);
    const bad = await pkglog(['registry', 'add', 'other', readFileSync(registryKey, 'utf8').trim(), '--ecosystem', 'pypi', '--data-dir', data]);
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /^pkglog registry add: registry key: this is a private key[^\n]*\n$/);

    const wdata = join(tmp.dir, 'wdata');
    const logB64 = parseVerifierKey(log.vkey).publicKey.toString('base64');
    const addLog = await pkglog(['witness', 'add-log', log.origin, logB64, '--data-dir', wdata]);
    assert.equal(addLog.code, 0, addLog.out + addLog.err);
    const again = await pkglog(['witness', 'add-log', log.origin, log.vkey, '--data-dir', wdata]);
    assert.equal(again.code, 0, `the base64 key was stored as its vkey, so re-adding the vkey is the same log: ${again.out}${again.err}`);
    const wbad = await pkglog(['witness', 'add-log', 'example.test/other', readFileSync(registryKey, 'utf8'), '--data-dir', wdata]);
    assert.equal(wbad.code, 2, wbad.err);
    assert.match(wbad.err, /^pkglog witness add-log: LOG_VKEY: this is a private key[^\n]*\n$/);
    const wits = await pkglog(['witnesses', 'add', 'http://127.0.0.1:1', readFileSync(registryKey, 'utf8').trim(), '--data-dir', data]);
    assert.equal(wits.code, 2, wits.err);
    assert.match(wits.err, /^pkglog witnesses add: witness vkey: this is a private key[^\n]*\n$/);
  });
});
