/**
 * The publisher with an S3 target (server/publish-s3.ts, `--publish-s3`) against s3rver, an S3-compatible server
 * (test/support/s3rver.ts): the bucket holds exactly the tlog-tiles layout of the published tree (the same as a
 * directory, without the .gz copies), byte for byte what the log serves, with tlog-tiles headers on GET; a full tile
 * is PUT once (s3rver's event log of every PUT); a new publisher (a restart) writes nothing; after a crash it catches
 * up from the bucket's checkpoint; it never replaces the checkpoint by a smaller one, and refuses a bucket holding
 * another log's checkpoint or a bigger one than the database.
 */
import assert from 'node:assert/strict';
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import * as I from '../interop/independent.ts';
import { removeDir, startTestLog } from '../support/log-harness.ts';
import { artifact, seedOf, sign } from '../support/submissions.ts';
import { startS3, S3RVER_CREDENTIALS, type RunningS3 } from '../support/s3rver.ts';
import { expectedLayout } from '../support/publish-layout.ts';
import { get, readPublishedLog } from '../support/tiles-check.ts';
import { Publisher } from '../../server/publish.ts';
import { parseS3Url, S3Target } from '../../server/publish-s3.ts';
import { ed25519Signer, parseVerifierKey } from '../../core/note.ts';
import { signCheckpoint } from '../../server/sequencer.ts';
import { isPkglogError } from '../../core/errors.ts';

type Log = Awaited<ReturnType<typeof startTestLog>>;

let next = 0;
async function batch(log: Log, n: number): Promise<number> {
  const ps = Array.from({ length: n }, () => log.sequencer.submit(sign(artifact(next++))));
  log.sequencer.flush();
  const r = await Promise.all(ps);
  return r[r.length - 1]!.treeSize;
}

describe('publisher (--publish-s3, against s3rver)', function () {
  this.timeout(60_000);
  let s3: RunningS3;
  let client: S3Client;
  let log: Log;
  const prefix = 'logs/a';
  const base = () => `${s3.endpoint}/${s3.bucket}/${prefix}`;

  before(async () => {
    s3 = await startS3();
    client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
    log = await startTestLog();
  });
  after(async () => {
    await log?.close();
    client?.destroy();
    await s3?.stop();
    if (log) removeDir(log.dataDir);
  });

  function publisher(size?: () => number, checkpoint?: () => Promise<{ treeSize: number; note: string }> | { treeSize: number; note: string }, lines: string[] = []): Publisher {
    return new Publisher({
      target: new S3Target({ bucket: s3.bucket, prefix, endpoint: s3.endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS }),
      store: log.store, origin: log.origin, verifier: parseVerifierKey(log.vkey), log: (m) => lines.push(m),
      publishableSize: size ?? (() => log.guard.highWaterMark.treeSize),
      checkpoint: checkpoint ?? (() => log.checkpoints.latest()),
    });
  }

  async function keys(): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const l = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix + '/', ...(token ? { ContinuationToken: token } : {}) }));
      for (const c of l.Contents ?? []) out.push(c.Key!.slice(prefix.length + 1));
      token = l.IsTruncated ? l.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  const signed: number[] = [];
  let size = 0;

  it('parses s3://BUCKET/PREFIX strictly', () => {
    assert.deepEqual(parseS3Url('s3://my-bucket'), { bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseS3Url('s3://my.bucket/a/b/'), { bucket: 'my.bucket', prefix: 'a/b' });
    for (const bad of ['s3:/x/y', 'https://b/p', 's3://B/p', 's3://ab', 's3://bucket//p', 's3://bucket/a/../b', 's3://bucket/./b']) {
      assert.throws(() => parseS3Url(bad), (e: unknown) => isPkglogError(e, 'usage'), bad);
    }
  });

  it('writes exactly the tlog-tiles layout (a directory\'s, without .gz), byte for byte what the log serves, with tlog-tiles headers', async () => {
    const p = publisher();
    await p.start();
    try {
      await p.idle();
      assert.deepEqual(await keys(), ['checkpoint']);
      for (const n of [1, 3, 251, 1, 1, 256, 300, 5]) {
        signed.push((size = await batch(log, n)));
        p.notify();
        await p.idle();
        assert.deepEqual(await keys(), expectedLayout(size, signed, false), `layout at size ${size}`);
        assert.equal((await get(base(), 'checkpoint')).body.toString(), (await get(log.url, 'checkpoint')).body.toString());
      }
      // The independent reader through s3rver's HTTP URL alone; every object compared with the log's own routes.
      assert.equal(await readPublishedLog({ base: base(), vkey: I.parseVKey(log.vkey), logUrl: log.url }), size);
      assert.equal(p.publishedSize, size);
    } finally {
      await p.close();
    }
  });

  it('PUTs a full tile once: a restart whose tiles are all there (killed before the checkpoint) writes the checkpoint only', async () => {
    // What a crash after the tiles and before the checkpoint leaves: every tile of `size`, the checkpoint of size 255.
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/checkpoint`, Body: (await log.store.checkpoint(signed[2]!))! }));
    const putsBefore = s3.puts.length;
    const p = publisher();
    await p.start();
    assert.equal(p.publishedSize, signed[2]);
    await p.idle();
    await p.close();
    assert.equal(p.publishedSize, size);
    assert.equal(p.stats.written, 1);
    assert.deepEqual(s3.puts.slice(putsBefore), [`${prefix}/checkpoint`]);
    const full = s3.puts.filter((k) => /\/tile\/(entries|[0-9]+)\/(x[0-9]{3}\/)*[0-9]{3}$/.test(k));
    assert.ok(full.length >= 6, `full tiles PUT: ${full.join(' ')}`);
    assert.deepEqual(full, [...new Set(full)], 'no full tile PUT twice');
    const partials = s3.puts.filter((k) => k.includes('.p/'));
    assert.deepEqual(partials, [...new Set(partials)], 'no partial tile PUT twice');
  });

  it('catches up from the bucket\'s checkpoint after a crash (objects after it missing); never replaces it by a smaller one', async () => {
    const old = (await log.store.checkpoint(signed[2]!))!; // size 255
    // Roll the bucket back to size 255: its checkpoint, and every object the later sizes added.
    const want = expectedLayout(size, signed, false);
    const keep = new Set(expectedLayout(signed[2]!, signed.slice(0, 3), false));
    for (const k of want) if (!keep.has(k)) await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${k}` }));
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/checkpoint`, Body: old, ContentType: 'text/plain; charset=utf-8' }));
    const p = publisher();
    await p.start();
    assert.equal(p.publishedSize, signed[2]);
    await p.idle();
    await p.close();
    assert.equal(p.publishedSize, size);
    assert.deepEqual(await keys(), want);
    assert.equal(await readPublishedLog({ base: base(), vkey: I.parseVKey(log.vkey), logUrl: log.url }), size);
    // A stale publisher asked to publish size 5 over the current size: the checkpoint stays.
    const before = (await get(base(), 'checkpoint')).body;
    const stale = publisher(() => 5, async () => ({ treeSize: 5, note: (await log.store.checkpoint(5))! }));
    await stale.start();
    await stale.idle();
    await stale.close();
    assert.ok((await get(base(), 'checkpoint')).body.equals(before));
  });

  it('refuses a bucket holding another log\'s checkpoint, another root for a size, or a size beyond the database', async () => {
    const put = (note: string) => client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/checkpoint`, Body: note }));
    const refuses = async (re: RegExp) => {
      const lines: string[] = [];
      const p = publisher(undefined, undefined, lines);
      await assert.rejects(p.start(), (e: unknown) => isPkglogError(e, 'unsafe_state') && re.test((e as Error).message));
      await p.close();
    };
    const other = ed25519Signer(log.origin, seedOf('another log'));
    await put(signCheckpoint(other, log.origin, 10, Buffer.alloc(32, 7)));
    await refuses(/not a checkpoint signed by this log/);
    // The log's own key (the test harness's key file), another root at size 10.
    const { loadOrCreateLogKey } = await import('../../server/keys.ts');
    const own = loadOrCreateLogKey(`${log.dataDir}/log.key`, undefined);
    await put(signCheckpoint(own.signer, own.origin, 10, Buffer.alloc(32, 7)));
    await refuses(/s3:\/\/pkglog-test\/logs\/a\/checkpoint \(size 10\) is not the checkpoint this log signed/);
    await put(signCheckpoint(own.signer, own.origin, size + 1, Buffer.alloc(32, 7)));
    await refuses(/ahead of the database/);
  });
});
