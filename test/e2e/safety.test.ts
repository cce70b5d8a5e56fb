/**
 * The log never signs a fork, whatever happens to its disk (issue 7, items 1–3), with real processes on 127.0.0.1:0:
 * its database deleted or replaced while it runs, an older copy restored, one corrupted byte in a right-edge tile, and
 * a witness that knows more than the database. Each time the log stops or refuses to start with one clear message,
 * and no second root is ever signed for a size it published.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseCheckpoint } from '../../core/checkpoint.ts';
import { parseSignedNote } from '../../core/note.ts';
import { SCHEMA } from '../../log-store/schema.ts';
import { tileId } from '../../log-store/store.ts';
import { REGISTRY, REGISTRY_NAME, submissionBody } from '../support/submissions.ts';
import { removeDir, tempDir } from '../support/log-harness.ts';
import { PKGLOG_BIN, runPkglog, startProcess, type Started } from '../support/process.ts';
import { originHash } from '../../core/hash.ts';

const ORIGIN = 'example.test/safety-log';

/** Runs `pkglog ARGS` to completion (async: the test keeps serving other processes meanwhile). */
function pkglog(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PKGLOG_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

async function submitBatch(url: string, from: number, n: number): Promise<void> {
  const entries = Array.from({ length: n }, (_, i) => submissionBody(from + i));
  const r = await fetch(`${url}/v1/entries/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ entries }) });
  assert.equal(r.status, 200, await r.clone().text());
  const body = (await r.json()) as { results: Array<{ index?: number; status?: number }> };
  for (const x of body.results) assert.equal(typeof x.index, 'number', JSON.stringify(x));
}

async function checkpointSize(url: string): Promise<number> {
  return parseCheckpoint(parseSignedNote(await (await fetch(`${url}/checkpoint`)).text()).text).treeSize;
}

/** Resolves with the exit code once the process exits (or null after the timeout). */
function exitWithin(p: Started, ms: number): Promise<number | null | 'running'> {
  if (p.child.exitCode !== null) return Promise.resolve(p.child.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('running'), ms);
    p.child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

/**
 * Every (size, root) the database signed. With `alone`, the file is read alone: a -wal file left next to it by the
 * process that had the replaced file open is not applied to it.
 */
function signedRoots(dbPath: string, alone = false): Map<number, string> {
  const copy = join(tempDir('pkglog-safety-read-'), 'copy.sqlite');
  if (alone) copyFileSync(dbPath, copy);
  const db = new Database(alone ? copy : dbPath, { readonly: true });
  try {
    const rows = db.prepare('SELECT tree_size, root_hash FROM checkpoints ORDER BY tree_size').all() as Array<{ tree_size: number; root_hash: Buffer }>;
    return new Map(rows.map((r) => [r.tree_size, r.root_hash.toString('base64')]));
  } finally {
    db.close();
    removeDir(join(copy, '..'));
  }
}

/** Flips one byte of a stored tile with SQL (triggers dropped and restored): SQLite's integrity_check stays ok. */
export function flipTileByte(dbPath: string, level: number, index: number, byte: number): void {
  const db = new Database(dbPath);
  try {
    const row = db.prepare('SELECT data FROM tiles WHERE id = ?').get(tileId(level, index)) as { data: Buffer };
    const data = Buffer.from(row.data);
    data[byte]! ^= 0x01;
    db.exec('DROP TRIGGER tiles_only_grow');
    db.prepare('UPDATE tiles SET data = ? WHERE id = ?').run(data, tileId(level, index));
    db.exec(SCHEMA);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    db.close();
  }
}

describe('e2e: the log never signs a fork, whatever happens to its disk', function () {
  this.timeout(120_000);
  let dir: string;
  const procs: Started[] = [];
  const dirs: string[] = [];
  const env = () => ({ PKGLOG_DATA_DIR: dir, PKGLOG_LISTEN: '127.0.0.1:0', PKGLOG_ORIGIN: ORIGIN, PKGLOG_BATCH_INTERVAL_MS: '5' });
  const db = () => join(dir, 'log.sqlite');
  const hwm = () => join(dir, 'log.key.hwm');
  const start = async () => {
    const p = await startProcess(['serve', '--verify-threads', '0'], env());
    procs.push(p);
    return p;
  };
  beforeEach(async () => {
    dir = tempDir('pkglog-safety-');
    dirs.push(dir);
    const add = await pkglog(['registry', 'add', REGISTRY_NAME, REGISTRY.publicKey.toString('base64'), '--ecosystem', 'pypi'], env());
    assert.equal(add.status, 0, add.stderr);
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.stop('SIGKILL');
    for (const d of dirs.splice(0)) removeDir(d);
  });

  it('1. database deleted under a running log: it stops at once, and a restart refuses size 0 behind 20', async () => {
    const log = await start();
    await submitBatch(log.url, 0, 20);
    assert.equal(await checkpointSize(log.url), 20);
    rmSync(db());
    const code = await exitWithin(log, 15_000);
    assert.notEqual(code, 'running', 'the log must notice its database was deleted and stop');
    assert.equal(code, 9, 'exit code 9: unsafe state');
    assert.match(log.stderr(), /database file .*log\.sqlite was deleted or replaced/);
    // A restart must not start over at size 0.
    const again = await pkglog(['serve'], env());
    assert.equal(again.status, 9, `the log started on an empty database: ${again.stdout}`);
    assert.match(again.stderr, /refusing to sign: the database .*log\.sqlite is missing, but this log already published size 20/);
    assert.match(again.stderr, /mirror or the published tiles/);
    assert.equal(existsSync(db()), false, 'no empty database was created');
  });

  it('1b. database replaced (an older copy moved over it) while running: it stops before signing anything else', async () => {
    const log = await start();
    await submitBatch(log.url, 0, 10);
    const bak = join(dir, 'at-10.sqlite');
    const b = await pkglog(['backup', '--out', bak], env());
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stdout, /tree size 10/);
    await submitBatch(log.url, 10, 10);
    const roots = signedRoots(db());
    renameSync(bak, db());
    // The very next batch is refused (the inode check runs before every commit), and the log exits.
    const r = await fetch(`${log.url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(99)) })
      .then((x) => x.status, () => 'closed');
    assert.ok(r === 503 || r === 'closed', `a submission after the swap got ${r}`);
    const code = await exitWithin(log, 15_000);
    assert.notEqual(code, 'running');
    assert.notEqual(code, 0);
    const after = signedRoots(db(), true);
    for (const [size, root] of after) if (roots.has(size)) assert.equal(root, roots.get(size), `two roots for size ${size}`);
    assert.ok(Math.max(...after.keys()) <= 10, `nothing was signed into the swapped-in file: ${[...after.keys()]} ${log.stderr()}`);
  });

  it('2. an older backup restored: the log refuses to start, naming sizes 10 and 20 and what to do', async () => {
    const log = await start();
    await submitBatch(log.url, 0, 10);
    const bak = join(dir, 'backup-10.sqlite');
    const b = await pkglog(['backup', '--out', bak], env());
    assert.equal(b.status, 0, b.stderr);
    await submitBatch(log.url, 10, 10);
    assert.equal(await checkpointSize(log.url), 20);
    assert.equal(await log.stop('SIGTERM'), 0);
    const published = signedRoots(db());
    // Restore the backup the way an operator would.
    for (const f of ['log.sqlite', 'log.sqlite-wal', 'log.sqlite-shm']) rmSync(join(dir, f), { force: true });
    copyFileSync(bak, db());
    const again = await pkglog(['serve'], env());
    assert.equal(again.status, 9, `the restored backup started: ${again.stdout}`);
    assert.match(again.stderr, /holds a tree of size 10, but this log already published size 20/);
    assert.match(again.stderr, /bring this one up to size 20 from a mirror or the published tiles/);
    assert.equal(again.stderr.trim().split('\n').length, 1, `one clear error: ${again.stderr}`);
    const after = signedRoots(db());
    assert.deepEqual([...after.keys()].sort((x, y) => x - y).at(-1), 10);
    for (const [size, root] of after) assert.equal(root, published.get(size));
  });

  it('3. one corrupted byte in a right-edge tile: a restarted log refuses; a running log refuses the next batch', async () => {
    let log = await start();
    await submitBatch(log.url, 0, 20);
    assert.equal(await log.stop('SIGTERM'), 0);
    const published = signedRoots(db());
    flipTileByte(db(), 0, 0, 7 * 32 + 5);
    const again = await pkglog(['serve'], env());
    assert.equal(again.status, 9, `the log started with a corrupted right edge: ${again.stdout}`);
    assert.match(again.stderr, /right-edge hash tiles do not reproduce the root of its own tree of size 20/);
    assert.match(again.stderr, /pkglog fsck/);

    // Restore the byte; corrupt it while the log runs: the next batch is refused, nothing is signed.
    flipTileByte(db(), 0, 0, 7 * 32 + 5);
    log = await start();
    await submitBatch(log.url, 20, 1);
    flipTileByte(db(), 0, 0, 3);
    const r = await fetch(`${log.url}/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submissionBody(50)) });
    assert.equal(r.status, 503);
    assert.match(((await r.json()) as { message: string }).message, /right-edge hash tiles .* do not reproduce its stored root/);
    const after = signedRoots(db());
    assert.equal(Math.max(...after.keys()), 21);
    for (const [size, root] of published) assert.equal(after.get(size), root);
  });

  it('4. a real witness that cosigned a larger size: the restored log refuses to sign', async () => {
    const wDir = tempDir('pkglog-safety-w-');
    dirs.push(wDir);
    const w = await startProcess(['witness'], { PKGLOG_WITNESS_DATA_DIR: wDir, PKGLOG_WITNESS_LISTEN: '127.0.0.1:0', PKGLOG_WITNESS_NAME: 'witness.test/safety' });
    procs.push(w);
    const wa = await pkglog(['witnesses', 'add', w.url, w.info.get('vkey')!], env());
    assert.equal(wa.status, 0, wa.stderr);
    const log = await startProcess(['serve', '--verify-threads', '0', '--witness-interval', '100'], env());
    procs.push(log);
    assert.match(log.stderr(), /warning: witness .* HTTP 404/, 'the witness does not know the log yet: a warning, and the log goes on');
    const addLog = await pkglog(['witness', 'add-log', ORIGIN, log.info.get('vkey')!, '--data-dir', wDir], {});
    assert.equal(addLog.status, 0, addLog.stderr);
    await submitBatch(log.url, 0, 10);
    // A snapshot of the whole data dir at size 10: the database and the high-water mark next to the key.
    const snap = join(dir, 'snap-10.sqlite');
    assert.equal((await pkglog(['backup', '--out', snap], env())).status, 0);
    const snapHwm = readFileSync(hwm());
    await submitBatch(log.url, 10, 10);
    // Wait until the witness cosigned size 20.
    for (let i = 0; ; i++) {
      const r = await fetch(`${w.url}/${originHash(ORIGIN)}/checkpoint`);
      if (r.status === 200 && parseCheckpoint(parseSignedNote(await r.text()).text).treeSize === 20) break;
      assert.ok(i < 400, 'the witness did not cosign size 20');
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal(await log.stop('SIGTERM'), 0);
    for (const f of ['log.sqlite', 'log.sqlite-wal', 'log.sqlite-shm']) rmSync(join(dir, f), { force: true });
    copyFileSync(snap, db());
    writeFileSync(hwm(), snapHwm);
    const again = await pkglog(['serve'], env());
    assert.equal(again.status, 9, `the restored snapshot started: ${again.stdout}`);
    assert.match(again.stderr, /refusing to sign: witness http:\/\/127\.0\.0\.1:\d+ has cosigned size 20 of this log, but the database is at size 10/);
  });
});
