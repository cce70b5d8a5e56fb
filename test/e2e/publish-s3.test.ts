/**
 * End to end, real processes on 127.0.0.1: `pkglog serve --publish-s3 s3://pkglog-test/logs/e2e --s3-endpoint URL`
 * publishes into s3rver (an S3-compatible server, test/support/s3rver.ts; credentials from the standard AWS_*
 * variables); then, against the bucket's HTTP URL alone (`URL/pkglog-test/logs/e2e`, a tlog-tiles log URL):
 * - the independent tlog-tiles reader (test/interop/independent.ts) verifies the checkpoint, every tile and bundle,
 *   byte for byte the log's own /tile routes, with tlog-tiles headers (text/plain checkpoint, short-lived; immutable
 *   tiles; 404 beyond the tree);
 * - `pkglog audit` and `pkglog monitor` pass;
 * - kill -9 while publication is held after commits: the next start repairs the bucket up to the database's size;
 * - a bucket holding another log's checkpoint: `pkglog serve` refuses to start (exit 9); a malformed --publish-s3 or
 *   --s3-endpoint is a usage error (exit 2).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import * as I from '../interop/independent.ts';
import { startProcess, type Started } from '../support/process.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { REGISTRY, REGISTRY_NAME, seedOf } from '../support/submissions.ts';
import { startS3, S3RVER_CREDENTIALS, type RunningS3 } from '../support/s3rver.ts';
import { get, readPublishedLog, sizeOf, submitRange as submit, until } from '../support/tiles-check.ts';
import { addRegistry } from '../../server/registries.ts';
import { encodeBase64 } from '../../core/encoding.ts';
import { ed25519Signer } from '../../core/note.ts';
import { signCheckpoint } from '../../server/sequencer.ts';
import { runAsync } from '../client/helpers.ts';


describe('e2e: --publish-s3 into an S3-compatible server (s3rver), read through its HTTP URL', function () {
  this.timeout(180_000);
  let s3: RunningS3;
  let dataDir: string;
  let stateDir: string;
  let log: Started | undefined;
  let vkey: I.VKey;
  let vkeyText: string;
  let next = 0;
  const registryKey = `${REGISTRY_NAME}=${encodeBase64(REGISTRY.publicKey)}`;
  const base = () => `${s3.endpoint}/${s3.bucket}/logs/e2e`;

  const serve = (env: NodeJS.ProcessEnv = {}, url = 's3://pkglog-test/logs/e2e', dir = dataDir) =>
    startProcess(['serve', '--data-dir', dir, '--publish-s3', url, '--s3-endpoint', s3.endpoint,
      '--listen', '127.0.0.1:0', '--batch-interval', '5', '--verify-threads', '0'], { ...s3.env, ...env });

  before(async () => {
    s3 = await startS3();
    dataDir = tempDir();
    stateDir = tempDir('pkglog-state-');
    addRegistry(join(dataDir, 'registries.txt'), REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), { ecosystems: '*' });
    log = await serve();
    vkeyText = log.info.get('vkey')!;
    vkey = I.parseVKey(vkeyText);
  });
  after(async () => {
    await log?.stop();
    await s3?.stop();
    for (const d of [dataDir, stateDir]) if (d) removeDir(d);
  });

  /** Waits until the bucket serves the checkpoint the log serves. */
  async function published(): Promise<Buffer> {
    let want = Buffer.alloc(0);
    await until('the bucket\'s checkpoint to reach the log\'s', async () => {
      want = (await get(log!.url, 'checkpoint')).body;
      return (await get(base(), 'checkpoint')).body.equals(want);
    });
    return want;
  }

  const trust = (state: string) => ['--log', base(), '--log-key', vkeyText, '--registry-key', registryKey, '--state-dir', join(stateDir, state)];

  it('the bucket serves exactly the log\'s checkpoint, tiles and bundles; the independent reader verifies them', async () => {
    await submit(log!.url, next, 1);
    await submit(log!.url, (next += 1), 255);
    await submit(log!.url, (next += 255), 44);
    next += 44;
    assert.equal(sizeOf(await published()), 300);
    assert.equal(await readPublishedLog({ base: base(), vkey, logUrl: log!.url }), 300);
    assert.doesNotMatch(log!.stderr(), /NodeVersionSupportWarning|"level":[45]0/);
  });

  it('pkglog audit and pkglog monitor pass against the bucket URL alone', async () => {
    const a = await runAsync(['audit', ...trust('audit'), '--json']);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.equal(JSON.parse(a.stdout).entries, 300);
    const m = await runAsync(['monitor', ...trust('monitor'), '--watch', 'pypi/requests', '--quiet']);
    assert.equal(m.code, 0, m.stdout + m.stderr);
    assert.equal((m.stdout.match(/^NEW: /gm) ?? []).length, 300);
  });

  it('kill -9 while publication is held after commits: the next start repairs the bucket from its checkpoint', async () => {
    await log!.stop();
    log = await serve({ PKGLOG_TEST_PUBLISH_FAULT: `hold:${next}` });
    const acked = [...(await submit(log.url, next, 20)), ...(await submit(log.url, next + 20, 300))];
    next += 320;
    assert.equal(acked[acked.length - 1], 619);
    assert.equal(sizeOf((await get(base(), 'checkpoint')).body), 300, 'committed and answered, the bucket still at 300');
    assert.equal(await log.stop('SIGKILL'), null);
    log = await serve();
    assert.equal(sizeOf(await published()), 620);
    assert.equal(await readPublishedLog({ base: base(), vkey, logUrl: log.url }), 620);
    const a = await runAsync(['audit', ...trust('audit'), '--json']);
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.equal(JSON.parse(a.stdout).entries, 620);
  });

  it('refuses to start on a bucket holding another log\'s checkpoint (exit 9); bad --publish-s3 / --s3-endpoint: exit 2', async () => {
    const client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
    try {
      const origin = vkeyText.split('+')[0]!;
      const other = ed25519Signer(origin, seedOf('another log'));
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'logs/other/checkpoint', Body: signCheckpoint(other, origin, 3, Buffer.alloc(32, 1)) }));
    } finally {
      client.destroy();
    }
    await log!.stop();
    log = undefined;
    await assert.rejects(serve({}, 's3://pkglog-test/logs/other'), /exited with 9[^]*not a checkpoint signed by this log/);
    await assert.rejects(serve({}, 's3://Bad_Bucket/x'), /exited with 2[^]*want s3:\/\/BUCKET\/PREFIX/);
    await assert.rejects(startProcess(['serve', '--data-dir', dataDir, '--publish-s3', 's3://pkglog-test/x', '--s3-endpoint', 'ftp://h', '--listen', '127.0.0.1:0']),
      /exited with 2[^]*--s3-endpoint/);
    // the log itself is fine: it starts again on its own bucket
    log = await serve();
    assert.equal(sizeOf(await published()), 620);
  });
});
