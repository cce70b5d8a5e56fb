/**
 * The package index end to end with real processes on 127.0.0.1: `pkglog serve --index` with one real `pkglog witness`
 * that witnesses both the log and its output log (`<origin>/index`). Entries are submitted over HTTP; every bundle
 * (package over two pages, version, file, sha256, publisher, absence) is fetched over HTTP and verified with core's
 * verifyIndexBundle under a policy for the output log requiring the witness's cosignature; the proven histories are
 * the submitted entries. The output log's tiles reproduce its checkpoint. Bad input is a 4xx JSON error. After a
 * SIGKILL the index resumes from its stored revision (its earlier leaves unchanged) and covers the new entries;
 * `pkglog backup` then copies the index database (index.sqlite) with the log's.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { leafHash } from '../../core/hash.ts';
import { formatVerifierKey, parseSignedNote, SIG_TYPE_ED25519 } from '../../core/note.ts';
import { parsePolicy } from '../../core/policy.ts';
import { parseEntryBundle } from '../../core/tiles.ts';
import { parseIndexRevision } from '../../core/index-revision.ts';
import { verifyIndexBundle, type IndexCursor, type IndexTrust } from '../../core/index-bundle.ts';
import type { IndexQuery } from '../../core/index-keys.ts';
import { formatSubmission } from '../../core/entry.ts';
import { loadOrCreateLogKey } from '../../server/keys.ts';
import { tempDir } from '../support/log-harness.ts';
import { pkglogOk, startProcess } from '../support/process.ts';
import { addTestRegistry, cleanUpAfter, logEnv, startWitness } from '../support/e2e-setup.ts';
import { artifact, keyPair, sign } from '../support/submissions.ts';
import { ReferenceTree } from '../support/reference-tree.ts';

const ORIGIN = 'example.test/index-log';
const INDEX_ORIGIN = `${ORIGIN}/index`;

const other = keyPair('other publisher');

/** Entry i of pypi/demo (70 files: two pages), entry 3 by another publisher; plus pypi/single. */
function body(i: number): Record<string, unknown> {
  if (i === 1000) return formatSubmission(sign(artifact(0, { name: 'single', filename: 'single-1.0.0-py3-none-any.whl' })));
  const a = artifact(i, { name: 'demo', filename: `demo-1.0.${i}-py3-none-any.whl` });
  return formatSubmission(i === 3 ? sign(a, other) : sign(a));
}

async function submitBatch(url: string, ids: number[]): Promise<number[]> {
  const r = await fetch(`${url}/v1/entries/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ entries: ids.map(body) }) });
  assert.equal(r.status, 200, await r.clone().text());
  const { results } = (await r.json()) as { results: Array<{ index?: number; error?: string }> };
  return results.map((x) => {
    assert.equal(typeof x.index, 'number', JSON.stringify(x));
    return x.index!;
  });
}

async function get(url: string): Promise<{ status: number; text: string; type: string }> {
  const r = await fetch(url);
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') ?? '' };
}

function queryPath(q: IndexQuery): string {
  switch (q.kind) {
    case 'package':
      return `${q.ecosystem}/${q.name}`;
    case 'version':
      return `${q.ecosystem}/${q.name}/${q.version}`;
    case 'file':
      return `${q.ecosystem}/${q.name}/${q.version}/${q.filename}`;
    case 'sha256':
      return `sha256/${q.sha256}`;
    case 'publisher':
      return `publisher/${Buffer.from(q.publisherKey).toString('base64url')}`;
  }
}

describe('e2e: the package index (pkglog serve --index, a real witness)', function () {
  this.timeout(120_000);
  const { dirs, procs } = cleanUpAfter();

  it('serves bundles that verify against the witnessed output log, for every kind of query and for absence; resumes after a crash', async () => {
    const logDir = tempDir('pkglog-index-log-');
    const wDir = tempDir('pkglog-index-w-');
    dirs.push(logDir, wDir);
    const logKey = loadOrCreateLogKey(join(logDir, 'log.key'), ORIGIN);
    const indexVkey = formatVerifierKey(INDEX_ORIGIN, SIG_TYPE_ED25519, logKey.signer.publicKey);
    const env = logEnv(logDir, ORIGIN);
    await pkglogOk(['witness', 'add-log', ORIGIN, logKey.vkey, '--data-dir', wDir]);
    await pkglogOk(['witness', 'add-log', INDEX_ORIGIN, indexVkey, '--data-dir', wDir]);
    await addTestRegistry(env);
    const w = await startWitness(wDir, 'witness.test/w1');
    procs.push(w);
    const wVkey = w.info.get('vkey')!;
    await pkglogOk(['witnesses', 'add', w.url, wVkey], env);
    const serveArgs = ['serve', '--index', '--witness-quorum', '1', '--witness-interval', '100', '--batch-interval', '20'];
    let log = await startProcess(serveArgs, env);
    procs.push(log);
    assert.equal((await get(`${log.url}/v1/index/log/vkey`)).text.trim(), indexVkey, 'the output log is signed by the log key under <origin>/index');
    const trust: IndexTrust = { policy: parsePolicy(`log ${indexVkey}\nwitness w1 ${wVkey}\nquorum w1\n`), inputOrigin: ORIGIN };

    const demo = await submitBatch(log.url, Array.from({ length: 70 }, (_, i) => i));
    const single = await submitBatch(log.url, [1000]);
    const size = single[0]! + 1;

    /** All pages of a query, verified; waits until the served revision covers `minSize` (the index lags one batch). */
    const history = async (url: string, q: IndexQuery, minSize: number) => {
      for (let attempt = 0; ; attempt++) {
        const indices: number[] = [];
        let cursor: IndexCursor | undefined;
        let v;
        do {
          const r = await get(`${url}/v1/index/${queryPath(q)}${cursor ? `?cursor=${cursor.revision}.${cursor.page}` : ''}`);
          assert.equal(r.status, 200, r.text);
          assert.match(r.type, /^application\/json/);
          v = verifyIndexBundle(r.text, trust, cursor ? { query: q, cursor } : { query: q });
          indices.push(...v.entries.map((e) => e.index));
          cursor = v.next ?? undefined;
        } while (cursor !== undefined);
        if (v.revision.inputTreeSize >= minSize) return { indices, v, entries: indices };
        assert.ok(attempt < 200, `the index did not reach size ${minSize} (at ${v.revision.inputTreeSize})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    const pkg = await history(log.url, { kind: 'package', ecosystem: 'pypi', name: 'demo' }, size);
    assert.deepEqual(pkg.indices, demo, 'the whole history of pypi/demo, over two pages');
    assert.equal(pkg.v.count, 70);
    assert.ok(pkg.v.cosigners.length >= 1, 'the output checkpoint is cosigned by the witness');
    const a5 = artifact(5, { name: 'demo', filename: 'demo-1.0.5-py3-none-any.whl' });
    assert.deepEqual((await history(log.url, { kind: 'version', ecosystem: 'pypi', name: 'demo', version: a5.version }, size)).indices, [demo[5]]);
    assert.deepEqual((await history(log.url, { kind: 'file', ecosystem: 'pypi', name: 'demo', version: a5.version, filename: a5.filename }, size)).indices, [demo[5]]);
    assert.deepEqual((await history(log.url, { kind: 'sha256', sha256: a5.sha256 }, size)).indices, [demo[5]]);
    // artifact(0)'s content is shared by demo 0 and single: the sha256 history holds both.
    assert.deepEqual((await history(log.url, { kind: 'sha256', sha256: artifact(0).sha256 }, size)).indices, [demo[0], single[0]]);
    assert.deepEqual((await history(log.url, { kind: 'publisher', publisherKey: other.publicKey }, size)).indices, [demo[3]]);
    const absent = await history(log.url, { kind: 'package', ecosystem: 'pypi', name: 'absent' }, size);
    assert.equal(absent.v.present, false);
    assert.deepEqual(absent.indices, []);
    assert.equal((await history(log.url, { kind: 'file', ecosystem: 'pypi', name: 'demo', version: a5.version, filename: 'other.tar.gz' }, size)).v.present, false);

    // The output log over tlog-tiles: its leaves (entry bundle) and hash tile reproduce its checkpoint.
    const cpText = (await get(`${log.url}/v1/index/log/checkpoint`)).text;
    const cp = parseCheckpoint(parseSignedNote(cpText).text);
    assert.equal(cp.origin, INDEX_ORIGIN);
    assert.ok(cp.treeSize < 256);
    const leaves = parseEntryBundle(Buffer.from(await (await fetch(`${log.url}/v1/index/log/tile/entries/000.p/${cp.treeSize}`)).arrayBuffer()));
    assert.equal(leaves.length, cp.treeSize);
    leaves.forEach((l, i) => assert.equal(parseIndexRevision(l).revision, i));
    assert.deepEqual(ReferenceTree.fromEntries(leaves).root(), cp.rootHash);
    const tile = Buffer.from(await (await fetch(`${log.url}/v1/index/log/tile/0/000.p/${cp.treeSize}`)).arrayBuffer());
    assert.deepEqual(tile, Buffer.concat(leaves.map((l) => leafHash(l))));

    // Bad input: 4xx JSON, never a 500.
    for (const [path, status, code] of [
      ['/v1/index/pypi/Demo', 400, 'malformed'],
      ['/v1/index/sha256/zz', 400, 'malformed'],
      ['/v1/index/publisher/abc', 400, 'malformed'],
      ['/v1/index/pypi/demo?cursor=x', 400, 'malformed'],
      ['/v1/index/pypi/demo?cursor=1.0&cursor=1.1', 400, 'malformed'],
      [`/v1/index/pypi/demo?cursor=${pkg.v.revision.revision}.5`, 400, 'out_of_range'],
      ['/v1/index/pypi/demo?cursor=99999.0', 404, 'not_found'],
      ['/v1/index/log/tile/0/999', 404, 'not_found'],
    ] as const) {
      const r = await get(`${log.url}${path}`);
      assert.equal(r.status, status, `${path}: ${r.text}`);
      assert.equal((JSON.parse(r.text) as { error: string }).error, code, path);
    }

    // Crash and restart: the index resumes from its stored revision, earlier leaves unchanged, new entries covered.
    await log.stop('SIGKILL');
    log = await startProcess(serveArgs, env);
    procs.push(log);
    const more = await submitBatch(log.url, [70, 71]);
    const after = await history(log.url, { kind: 'package', ecosystem: 'pypi', name: 'demo' }, more[1]! + 1);
    assert.deepEqual(after.indices, [...demo, ...more]);
    const later = parseCheckpoint(parseSignedNote((await get(`${log.url}/v1/index/log/checkpoint`)).text).text);
    const leaves2 = parseEntryBundle(Buffer.from(await (await fetch(`${log.url}/v1/index/log/tile/entries/000.p/${later.treeSize}`)).arrayBuffer()));
    assert.deepEqual(leaves2.slice(0, cp.treeSize), leaves, 'the output log only grew');
    assert.deepEqual(ReferenceTree.fromEntries(leaves2).root(), later.rootHash);

    // pkglog backup while the log runs copies the index database too, consistent and self-contained.
    const bak = join(logDir, 'backup.sqlite');
    const out = await pkglogOk(['backup', '--out', bak], env);
    assert.match(out, new RegExp(`the package index \\(${later.treeSize} revisions\\) written to ${bak.replace(/[.]/g, '\\.')}\\.index\\.sqlite`));
    const copy = new Database(`${bak}.index.sqlite`, { readonly: true, fileMustExist: true });
    try {
      assert.equal((copy.prepare('SELECT revisions FROM index_head').get() as { revisions: number }).revisions, later.treeSize);
      assert.equal(copy.pragma('journal_mode', { simple: true }), 'delete');
    } finally {
      copy.close();
    }
  });
});
