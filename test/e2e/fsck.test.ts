/**
 * `pkglog fsck` names one corrupted byte in each table (entries, tiles, checkpoints, tree, cosignatures, meta): table,
 * row, column and byte range; and a log restarted on a database damaged at its right edge refuses to sign.
 * The damage is done with SQL (triggers dropped and restored), so SQLite's integrity_check still says ok.
 */
import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { cosignatureSigner } from '../../core/cosignature.ts';
import { formatSignatureLine, formatVerifierKey, parseSignedNote, signText, SIG_TYPE_COSIGNATURE_V1 } from '../../core/note.ts';
import { isPkglogError } from '../../core/errors.ts';
import { SCHEMA } from '../../log-store/schema.ts';
import { tileId } from '../../log-store/store.ts';
import { openTestLog, removeDir, tempDir } from '../support/log-harness.ts';
import { runPkglog } from '../support/process.ts';
import { artifact, seedOf, sign } from '../support/submissions.ts';

const ORIGIN = 'example.test/fsck-log';
const WITNESS = 'witness.test/fsck';

function damage(dir: string, fn: (db: Database.Database) => void): void {
  const db = new Database(join(dir, 'log.sqlite'));
  try {
    for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all() as Array<{ name: string }>) db.exec(`DROP TRIGGER ${name}`);
    fn(db);
    db.exec(SCHEMA);
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  } finally {
    db.close();
  }
}

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at]! ^= 0x01;
  return c;
}

/** Replaces the character at `at` with another base64 character (the string stays valid base64). */
function otherChar(s: string, at: number): string {
  return s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);
}

describe('e2e: pkglog fsck names each damaged byte, and the log refuses to sign on a damaged right edge', function () {
  this.timeout(180_000);
  let pristine: string;
  let closedUrl: string;
  const dirs: string[] = [];
  const copy = () => {
    const d = tempDir('pkglog-fsck-case-');
    dirs.push(d);
    cpSync(pristine, d, { recursive: true });
    return d;
  };
  const fsck = (dir: string) => runPkglog(['fsck', '--data-dir', dir]);
  const refuses = async (dir: string, message: RegExp) => {
    let log;
    try {
      log = await openTestLog({ dataDir: dir });
    } catch (e) {
      assert.match((e as Error).message, message);
      return e;
    }
    await log.close();
    assert.fail('the log opened on a damaged database');
  };

  before(async () => {
    pristine = tempDir('pkglog-fsck-');
    dirs.push(pristine);
    const log = await openTestLog({ dataDir: pristine, origin: ORIGIN });
    let i = 0;
    for (const n of [300, 250, 50]) {
      const ps = Array.from({ length: n }, () => log.sequencer.submit(sign(artifact(i++))));
      log.sequencer.flush();
      await Promise.all(ps);
    }
    assert.equal((await log.store.treeState())!.treeSize, 600);
    // A witness cosignature of the newest checkpoint, and the witness in witnesses.txt (at a port nobody listens on).
    const w = cosignatureSigner(WITNESS, seedOf('fsck witness'), () => 1_700_000_000);
    const text = parseSignedNote((await log.store.checkpoint(600))!).text;
    const line = formatSignatureLine(signText(text, w)).trimEnd();
    await log.store.addCosignatures(600, [{ keyName: WITNESS, keyId: w.keyId, line }]);
    await log.close();
    const closed = createServer();
    const port = await new Promise<number>((r) => closed.listen(0, '127.0.0.1', () => r((closed.address() as AddressInfo).port)));
    await new Promise((r) => closed.close(r));
    closedUrl = `http://127.0.0.1:${port}`;
    writeFileSync(join(pristine, 'witnesses.txt'), `${closedUrl} ${formatVerifierKey(WITNESS, SIG_TYPE_COSIGNATURE_V1, w.publicKey)}\n`);
  });
  after(() => {
    for (const d of dirs) removeDir(d);
  });

  it('a clean database: exit 0, OK, and the log starts (an unreachable witness is only a warning)', async () => {
    const r = fsck(pristine);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /OK: 600 entries, \d+ tiles, 4 checkpoints, 1 cosignatures/);
    const d = copy();
    const logs: string[] = [];
    const { resolveConfig } = await import('../../server/config.ts');
    const { startLog } = await import('../../server/main.ts');
    const log = await startLog(resolveConfig({ dataDir: d, listen: '127.0.0.1:0' }, {}), (m) => logs.push(m), { witnessCheckTimeoutMs: 2000 });
    const running = fsck(d); // fsck reads the database while the log runs (the log's lock is log.lock)
    await log.close();
    assert.equal(running.status, 0, running.stdout + running.stderr);
    assert.ok(logs.includes(`warning: witness ${closedUrl} could not be asked what it cosigned (ECONNREFUSED)`), logs.join('\n'));
  });

  it('entries: a leaf byte at the right edge (the log refuses), a leaf_hash byte, an index column', async () => {
    const d = copy();
    damage(d, (db) => {
      const row = db.prepare('SELECT leaf FROM entries WHERE idx = 590').get() as { leaf: Buffer };
      db.prepare('UPDATE entries SET leaf = ? WHERE idx = 590').run(flip(row.leaf, 40));
      const h = db.prepare('SELECT leaf_hash FROM entries WHERE idx = 5').get() as { leaf_hash: Buffer };
      db.prepare('UPDATE entries SET leaf_hash = ? WHERE idx = 5').run(flip(h.leaf_hash, 17));
      db.prepare("UPDATE entries SET version = '9.9.9' WHERE idx = 7").run();
    });
    const r = fsck(d);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /entries idx=590 column leaf bytes 0–\d+: the leaf does not hash to its leaf_hash/);
    assert.match(r.stdout, /entries idx=5 column leaf_hash bytes 17–17: differs from the hash of the leaf/);
    assert.match(r.stdout, /entries idx=7 column version bytes 0–\d+: differs from the leaf's version/);
    assert.match(r.stdout, /3 problem\(s\)/, r.stdout);
    await refuses(d, /refusing to sign: .*entry 590 does not match its leaf hash in tile\/0\/002\.p\/88/);
  });

  it('tiles: a byte of a full tile and of its inner levels; a byte of a right-edge tile (the log refuses)', async () => {
    const d = copy();
    damage(d, (db) => {
      const t = db.prepare('SELECT data, inner FROM tiles WHERE id = ?').get(tileId(0, 0)) as { data: Buffer; inner: Buffer };
      db.prepare('UPDATE tiles SET data = ?, inner = ? WHERE id = ?').run(flip(t.data, 100), flip(t.inner, 2000), tileId(0, 0));
    });
    let r = fsck(d);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /tiles id=0 \(level 0, index 0\) column data bytes 100–100: hash 3 differs from the one recomputed from the entries/);
    assert.match(r.stdout, /tiles id=0 \(level 0, index 0\) column inner bytes 2000–2000: stored inner levels differ/);
    const edge = copy();
    damage(edge, (db) => {
      const t = db.prepare('SELECT data FROM tiles WHERE id = ?').get(tileId(1, 0)) as { data: Buffer };
      db.prepare('UPDATE tiles SET data = ? WHERE id = ?').run(flip(t.data, 40), tileId(1, 0));
    });
    r = fsck(edge);
    assert.equal(r.status, 1);
    assert.match(r.stdout, new RegExp(`tiles id=${tileId(1, 0)} \\(level 1, index 0\\) column data bytes 40–40: hash 1 differs`));
    await refuses(edge, /refusing to sign: .*right-edge hash tiles do not reproduce the root of its own tree of size 600/);
  });

  it('checkpoints: a byte of an old note, of an old root_hash column; of the newest note (the log refuses)', async () => {
    const d = copy();
    damage(d, (db) => {
      const n = db.prepare('SELECT note FROM checkpoints WHERE tree_size = 300').get() as { note: string };
      db.prepare('UPDATE checkpoints SET note = ? WHERE tree_size = 300').run(n.note.replace('\n300\n', '\n301\n'));
      const c = db.prepare('SELECT root_hash FROM checkpoints WHERE tree_size = 550').get() as { root_hash: Buffer };
      db.prepare('UPDATE checkpoints SET root_hash = ? WHERE tree_size = 550').run(flip(c.root_hash, 31));
    });
    const r = fsck(d);
    assert.equal(r.status, 1);
    const at = Buffer.byteLength(`${ORIGIN}\n30`);
    assert.match(r.stdout, new RegExp(`checkpoints tree_size=300 column note bytes ${at}–${at}: not a checkpoint signed by the log key`));
    assert.match(r.stdout, /checkpoints tree_size=550 column root_hash bytes 31–31: differs from the root in the signed note/);
    const newest = copy();
    damage(newest, (db) => {
      const n = db.prepare('SELECT note FROM checkpoints WHERE tree_size = 600').get() as { note: string };
      db.prepare('UPDATE checkpoints SET note = ? WHERE tree_size = 600').run(otherChar(n.note, n.note.length - 5));
    });
    const r2 = fsck(newest);
    assert.equal(r2.status, 1);
    assert.match(r2.stdout, /checkpoints tree_size=600 column note bytes \d+–\d+: not a checkpoint signed by the log key/);
    assert.match(r2.stdout, /tree id=1 column checkpoint bytes \d+–\d+: differs from the checkpoints row of size 600/);
    await refuses(newest, /refusing to sign: .*the checkpoints table does not hold the tree row's checkpoint of size 600/);
  });

  it('tree: a byte of the root (the log refuses)', async () => {
    const d = copy();
    damage(d, (db) => {
      const t = db.prepare('SELECT root_hash FROM tree WHERE id = 1').get() as { root_hash: Buffer };
      db.prepare('UPDATE tree SET root_hash = ? WHERE id = 1').run(flip(t.root_hash, 9));
    });
    const r = fsck(d);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /tree id=1 column root_hash bytes 9–9: differs from the root in the signed note/);
    await refuses(d, /refusing to sign: .*the tree row \(size 600\) disagrees with its own signed checkpoint/);
  });

  it('cosignatures: a byte of the newest cosignature (the log refuses)', async () => {
    const d = copy();
    damage(d, (db) => {
      const c = db.prepare('SELECT line FROM cosignatures WHERE tree_size = 600').get() as { line: string };
      db.prepare('UPDATE cosignatures SET line = ? WHERE tree_size = 600').run(otherChar(c.line, c.line.length - 8));
    });
    const r = fsck(d);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /cosignatures tree_size=600 key_name=witness\.test\/fsck key_id=[0-9a-f]{8} column line bytes \d+–\d+: the cosignature does not verify/);
    const e = await refuses(d, /refusing to sign: .*the stored cosignatures of size 600 do not verify/);
    assert.ok(isPkglogError(e, 'unsafe_state'));
  });

  it('meta: a byte of the origin (the log refuses)', async () => {
    const d = copy();
    damage(d, (db) => {
      db.prepare("UPDATE meta SET value = ? WHERE key = 'origin'").run(otherChar(ORIGIN, 3));
    });
    const r = fsck(d);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /meta key=origin column value bytes 3–3: "exaAple\.test\/fsck-log", expected "example\.test\/fsck-log"/);
    await refuses(d, /belongs to origin exaAple\.test\/fsck-log, not example\.test\/fsck-log/);
  });
});
