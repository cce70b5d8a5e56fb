/**
 * End to end on PostgreSQL: `pkglog serve --database postgres://…` as a real process (its own fresh database on the
 * test server, test/support/postgres.ts) accepts submissions, serves proofs the client verifies, keeps everything
 * across a graceful restart and a SIGKILL, and refuses to start on an empty database once it has published (the
 * high-water mark next to the key). `pkglog migrate --database` reports the schema up to date.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { leafHash } from '../../core/hash.ts';
import { verifyConsistency, verifyInclusion } from '../../core/merkle.ts';
import { parseVerifierKey, verifyNote } from '../../core/note.ts';
import { parseTlogProof } from '../../core/tlog-proof.ts';
import { REGISTRY, REGISTRY_NAME, submissionBody } from '../support/submissions.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { runPkglog, startProcess, type Started } from '../support/process.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

async function post(url: string, path: string, body: unknown) {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

describe('e2e: pkglog serve --database postgres://…', function () {
  this.timeout(120_000);
  let dir: string;
  let db: TestDatabase;
  let other: TestDatabase | undefined;
  let proc: Started | undefined;
  beforeEach(async () => {
    dir = tempDir();
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await proc?.stop('SIGKILL');
    proc = undefined;
    await db.drop();
    await other?.drop();
    removeDir(dir);
  });

  it('accepts submissions, serves proofs a client verifies, and keeps its data across a restart and a crash', async () => {
    const env = { PKGLOG_DATA_DIR: dir, PKGLOG_LISTEN: '127.0.0.1:0', PKGLOG_ORIGIN: 'example.test/pg-log', PKGLOG_DATABASE_URL: '' };
    const add = runPkglog(['registry', 'add', REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), '--ecosystem', 'pypi'], env);
    assert.equal(add.status, 0, add.stderr);
    proc = await startProcess(['serve', '--database', db.url], env);
    const vkey = proc.info.get('vkey')!;
    const verifier = parseVerifierKey(vkey);
    assert.equal(existsSync(join(dir, 'log.sqlite')), false, 'no SQLite file: everything is in PostgreSQL');

    const single = await Promise.all([0, 1, 2].map((i) => post(proc!.url, '/v1/entries', submissionBody(i)))) as Array<{ index: number; proof: string }>;
    const batch = await post(proc.url, '/v1/entries/batch', { entries: Array.from({ length: 300 }, (_, i) => submissionBody(3 + i)) }) as { results: Array<{ index: number; proof: string }> };
    assert.equal(batch.results.length, 300);
    for (const r of [...single, ...batch.results]) {
      const p = parseTlogProof(r.proof);
      const cp = parseCheckpoint(verifyNote(p.checkpoint, [verifier]).note.text);
      verifyInclusion(p.index, cp.treeSize, leafHash(p.extra!), p.inclusionProof, cp.rootHash);
    }
    const cpText = await (await fetch(`${proc.url}/checkpoint`)).text();
    const cp = parseCheckpoint(verifyNote(cpText, [verifier]).note.text);
    assert.equal(cp.treeSize, 303);
    // `pkglog verify` checks an artifact online against this log: lookup, signatures, inclusion, checkpoint
    const file = join(dir, 'requests-1.0.7-py3-none-any.whl');
    writeFileSync(file, 'content 7');
    const verified = runPkglog(['verify', file, '--ecosystem', 'pypi', '--name', 'requests', '--version', '1.0.7', '--log', proc.url,
      '--log-key', vkey, '--registry-key', `${REGISTRY_NAME}=${REGISTRY.publicKey.toString('base64')}`, '--no-state']);
    assert.equal(verified.status, 0, verified.stderr + verified.stdout);
    // the rows are in the database
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const rows = await c.query<{ n: string }>('SELECT count(*) AS n FROM entries');
    await c.end();
    assert.equal(rows.rows[0]!.n, '303');

    // graceful restart, then a crash: the same checkpoint, idempotent resubmission, consistency across sizes
    assert.equal(await proc.stop('SIGTERM'), 0);
    proc = await startProcess(['serve'], { ...env, PKGLOG_DATABASE_URL: db.url });
    assert.equal(proc.info.get('vkey'), vkey);
    assert.equal(await (await fetch(`${proc.url}/checkpoint`)).text(), cpText);
    const again = await post(proc.url, '/v1/entries', submissionBody(1)) as { index: number; existing?: boolean };
    assert.equal(again.index, single[1]!.index);
    assert.equal(again.existing, true);
    await post(proc.url, '/v1/entries', submissionBody(400));
    await proc.stop('SIGKILL');
    proc = await startProcess(['serve', '--database', db.url], env);
    const cp2 = parseCheckpoint(verifyNote(await (await fetch(`${proc.url}/checkpoint`)).text(), [verifier]).note.text);
    assert.equal(cp2.treeSize, 304);
    const cons = await (await fetch(`${proc.url}/v1/proof/consistency?old=303&size=304`)).json() as { proof: string[] };
    verifyConsistency(303, 304, cp.rootHash, cp2.rootHash, cons.proof.map((p) => Buffer.from(p, 'base64')));
    const tile = await fetch(`${proc.url}/tile/0/000`);
    assert.equal(tile.status, 200);
    assert.equal((await tile.arrayBuffer()).byteLength, 256 * 32);
    await proc.stop('SIGTERM');
    proc = undefined;

    const m = runPkglog(['migrate', '--database', db.url]);
    assert.equal(m.status, 0, m.stderr);
    assert.match(m.stdout, /is at schema version 1 \(up to date\)/);

    // The same data dir (key and high-water mark at size 304) pointed at an empty database: refused, nothing signed.
    other = await createTestDatabase();
    const r = runPkglog(['serve', '--database', other.url], env);
    assert.equal(r.status, 9, r.stderr + r.stdout);
    assert.match(r.stderr, /holds no tree, but this log already published size 304/);
  });

  it('migrate creates the schema of an empty database, then finds nothing to do; a bad URL is a usage error', async () => {
    const first = runPkglog(['migrate', '--database', db.url]);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /schema version 0 → 1\n {2}applied 1: initial schema/);
    assert.doesNotMatch(first.stdout, /password/);
    const second = runPkglog(['migrate'], { PKGLOG_DATABASE_URL: db.url });
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /up to date/);
    const bad = runPkglog(['serve', '--database', 'mysql://nope', '--data-dir', dir]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--database must be a postgres:\/\/ URL/);
  });
});
