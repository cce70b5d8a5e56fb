/**
 * End to end, real processes on 127.0.0.1: `pkglog serve --publish-dir P` takes submissions; a real nginx serves P with
 * docs/nginx-example.conf; then, against the nginx URL alone:
 * - the independent tlog-tiles reader (test/interop/independent.ts) verifies the checkpoint, every hash tile and entry
 *   bundle (root recomputed, bundles hash to the level-0 tiles), byte for byte the same as the log's own /tile routes,
 *   with tlog-tiles headers (text/plain checkpoint, short-lived; immutable tiles; gzip bundles; 404 beyond the tree);
 * - `pkglog audit` and `pkglog monitor` pass;
 * - kill -9 between commit and publication (test hook PKGLOG_TEST_PUBLISH_FAULT: publication held, or the process
 *   SIGKILLs itself after writing the tiles and before the checkpoint): the directory keeps its last checkpoint (never
 *   a torn or missing file), and the next start repairs it up to the database's size.
 * Without nginx the test fails (it is never skipped): .ci/run installs it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as I from '../interop/independent.ts';
import { startProcess, type Started } from '../support/process.ts';
import { startNginx, type RunningNginx } from '../support/nginx.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { REGISTRY, REGISTRY_NAME } from '../support/submissions.ts';
import { addRegistry } from '../../server/registries.ts';
import { encodeBase64 } from '../../core/encoding.ts';
import { runAsync } from '../client/helpers.ts';
import { get, readPublishedLog, sizeOf, submitRange as submit, until } from '../support/tiles-check.ts';


describe('e2e: --publish-dir served by nginx (static tlog-tiles read path)', function () {
  this.timeout(180_000);
  let dataDir: string;
  let publishDir: string;
  let stateDir: string;
  let log: Started | undefined;
  let nginx: RunningNginx | undefined;
  let vkey: I.VKey;
  let vkeyText: string;
  let next = 0;
  const registryKey = `${REGISTRY_NAME}=${encodeBase64(REGISTRY.publicKey)}`;

  const serve = (env: NodeJS.ProcessEnv = {}) =>
    startProcess(['serve', '--data-dir', dataDir, '--publish-dir', publishDir, '--listen', '127.0.0.1:0', '--batch-interval', '5', '--verify-threads', '0'], env);

  before(async () => {
    dataDir = tempDir();
    publishDir = tempDir('pkglog-publish-');
    stateDir = tempDir('pkglog-state-');
    addRegistry(join(dataDir, 'registries.txt'), REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), { ecosystems: '*' });
    log = await serve();
    vkeyText = log.info.get('vkey')!;
    vkey = I.parseVKey(vkeyText);
    nginx = await startNginx(publishDir);
  });
  after(async () => {
    await log?.stop();
    await nginx?.stop();
    for (const d of [dataDir, publishDir, stateDir]) if (d) removeDir(d);
  });

  /** Waits until nginx serves the checkpoint the log serves. */
  async function published(): Promise<Buffer> {
    let want = Buffer.alloc(0);
    await until('the published checkpoint to reach the log\'s', async () => {
      want = (await get(log!.url, 'checkpoint')).body;
      return (await get(nginx!.url, 'checkpoint')).body.equals(want);
    });
    return want;
  }

  /** The independent reader against the nginx URL alone; also compares every file with the log's own routes. */
  const readThroughNginx = (compareWithLog = true) => readPublishedLog({
    base: nginx!.url, vkey, gzipBundles: true, notServed: ['.pkglog-tmp/', 'tile/entries/000.gz', 'tile/0/0'],
    ...(compareWithLog ? { logUrl: log!.url } : {}),
  });

  const trust = (state: string) => ['--log', nginx!.url, '--log-key', vkeyText, '--registry-key', registryKey, '--state-dir', join(stateDir, state)];

  it('nginx serves exactly the log\'s checkpoint, tiles and bundles; the independent reader verifies them', async () => {
    await submit(log!.url, next, 1);
    await submit(log!.url, (next += 1), 255);
    await submit(log!.url, (next += 255), 44);
    await submit(log!.url, (next += 44), 300);
    next += 300;
    const note = await published();
    assert.equal(sizeOf(note), 600);
    assert.equal(await readThroughNginx(), 600);
  });

  it('pkglog audit and pkglog monitor pass against the nginx URL alone', async () => {
    const a = await runAsync(['audit', ...trust('audit'), '--json']);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.equal(JSON.parse(a.stdout).entries, 600);
    const m = await runAsync(['monitor', ...trust('monitor'), '--watch', 'pypi/requests', '--quiet']);
    assert.equal(m.code, 0, m.stdout + m.stderr);
    assert.equal((m.stdout.match(/^NEW: /gm) ?? []).length, 600);
  });

  it('kill -9 while publication is held after commits: acknowledged entries are repaired into the directory at the next start', async () => {
    await log!.stop();
    log = await serve({ PKGLOG_TEST_PUBLISH_FAULT: `hold:${next}` });
    const acked = [...(await submit(log.url, next, 50)), ...(await submit(log.url, next + 50, 250))];
    next += 300;
    assert.equal(acked[acked.length - 1], 899);
    // committed and answered, but the directory still shows size 600
    assert.equal(sizeOf((await get(nginx!.url, 'checkpoint')).body), 600);
    assert.equal(await log.stop('SIGKILL'), null);
    log = await serve();
    const note = await published();
    assert.equal(sizeOf(note), 900);
    assert.equal(await readThroughNginx(), 900);
  });

  it('kill -9 after the tiles and before the checkpoint: the directory keeps its checkpoint; the next start completes it', async () => {
    await log!.stop();
    log = await serve({ PKGLOG_TEST_PUBLISH_FAULT: `kill-before-checkpoint:${next + 1}` });
    const dead = new Promise<void>((r) => log!.child.once('exit', () => r()));
    // The reply may or may not get out before the process kills itself: the entries are committed either way.
    await submit(log.url, next, 70).catch(() => undefined);
    await dead;
    assert.equal(log.child.signalCode, 'SIGKILL', 'the fault hook killed the process mid-publication');
    // tiles for size 970 are there, the checkpoint is still the old one
    const widths = readdirSync(join(publishDir, 'tile/0/003.p')).map(Number);
    assert.ok(Math.max(...widths) > 132, `tiles beyond size 900 were written before the kill (tile/0/003.p/: ${widths})`);
    assert.equal(sizeOf(readFileSync(join(publishDir, 'checkpoint'))), 900);
    assert.equal(await readThroughNginx(false), 900, 'what nginx serves (the log is down) stays consistent at size 900');
    next += 70;
    log = await serve();
    const note = await published();
    assert.equal(sizeOf(note), 970);
    assert.equal(await readThroughNginx(), 970);
    const a = await runAsync(['audit', ...trust('audit2'), '--json']);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.equal(JSON.parse(a.stdout).entries, 970);
  });
});
