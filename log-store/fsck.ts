/**
 * `pkglog fsck`: the full check of a log's database, O(n) time and bounded memory (entries are read in pages; one
 * partial tile per level and an O(log n) compact range are kept). It recomputes every leaf hash from the entries, every
 * hash tile (and the stored inner levels of full tiles) from the leaf hashes, the root at every stored checkpoint size,
 * and checks every checkpoint's signature, the tree row, every cosignature line (verified when its witness is known),
 * the columns that index each entry, the meta rows and the append-only triggers. Each problem names the table, the row,
 * the column and, where it can be told, the byte range that differs from what was recomputed.
 *
 * When two of three copies of a value agree (the leaf's hash, the entry's leaf_hash column, the hash in its level-0
 * tile; or a checkpoint's note, its root_hash column and the recomputed root), the odd one out is named.
 */
import { decodeLeaf, fileKey } from '../core/entry.ts';
import { leafHash, nodeHash, sha256 } from '../core/hash.ts';
import { formatCheckpoint, parseCheckpoint } from '../core/checkpoint.ts';
import { signNote, verifyNote, type Signer, type Verifier } from '../core/note.ts';
import { decodeBase64 } from '../core/encoding.ts';
import { innerLevels, TILE_WIDTH } from '../core/tiles.ts';
import { EMPTY_ROOT } from '../core/hash.ts';
import type { Hash } from '../core/types.ts';
import { SCHEMA, SCHEMA_VERSION } from './schema.ts';
import { tileId, type LogStore } from './store.ts';

export interface FsckProblem {
  table: string;
  /** The row, as `key=value`. */
  row: string;
  column?: string;
  /** Inclusive byte range within the column's value. */
  bytes?: [number, number];
  message: string;
}

export interface FsckOptions {
  origin: string;
  logVerifier: Verifier;
  /** The log's other keys (its ML-DSA-44 cosigner): their signatures on the checkpoints must verify too. */
  otherLogVerifiers?: Verifier[];
  /** With the log's signer key the expected checkpoint notes are recomputed exactly (Ed25519 is deterministic). */
  signer?: Signer;
  witnessVerifiers?: Verifier[];
  /** Entries read per page (default 1024). */
  pageSize?: number;
}

export interface FsckReport {
  problems: FsckProblem[];
  entries: number;
  tiles: number;
  checkpoints: number;
  cosignatures: number;
  /** Cosignature lines whose witness is not configured (parsed, not verified). */
  unverifiedCosignatures: number;
}

export function formatProblem(p: FsckProblem): string {
  const col = p.column === undefined ? '' : ` column ${p.column}`;
  const bytes = p.bytes === undefined ? '' : ` bytes ${p.bytes[0]}–${p.bytes[1]}`;
  return `${p.table} ${p.row}${col}${bytes}: ${p.message}`;
}

/** The first and last index at which a and b differ (over the longer length), or undefined when equal. */
export function diffRange(a: Uint8Array, b: Uint8Array): [number, number] | undefined {
  const n = Math.max(a.length, b.length);
  let first = -1;
  let last = -1;
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return first < 0 ? undefined : [first, last];
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

/** The root of every prefix as leaves are appended: a stack of perfect subtrees (RFC 6962 compact range). */
class CompactRange {
  private stack: Array<{ height: number; hash: Hash }> = [];
  size = 0;
  push(h: Hash): void {
    let node = { height: 0, hash: h };
    while (this.stack.length > 0 && this.stack[this.stack.length - 1]!.height === node.height) {
      const left = this.stack.pop()!;
      node = { height: node.height + 1, hash: nodeHash(left.hash, node.hash) };
    }
    this.stack.push(node);
    this.size++;
  }
  root(): Hash {
    if (this.stack.length === 0) return EMPTY_ROOT;
    let r = this.stack[this.stack.length - 1]!.hash;
    for (let i = this.stack.length - 2; i >= 0; i--) r = nodeHash(this.stack[i]!.hash, r);
    return r;
  }
}

export function fsckStore(store: LogStore, o: FsckOptions): FsckReport {
  const db = store.db;
  const problems: FsckProblem[] = [];
  const report = (p: FsckProblem) => problems.push(p);
  const pageSize = o.pageSize ?? 1024;

  // --- schema: the append-only triggers are in place ---
  const triggers = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all() as Array<{ name: string }>).map((r) => r.name));
  for (const m of SCHEMA.matchAll(/CREATE TRIGGER IF NOT EXISTS (\w+)/g)) {
    if (!triggers.has(m[1]!)) report({ table: 'sqlite_master', row: `name=${m[1]}`, message: 'append-only trigger is missing' });
  }

  // --- meta ---
  const meta = new Map((db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map((r) => [r.key, r.value]));
  const checkMeta = (key: string, expected: string) => {
    const v = meta.get(key);
    if (v === undefined) report({ table: 'meta', row: `key=${key}`, message: `row is missing (expected ${JSON.stringify(expected)})` });
    else if (v !== expected) {
      const r = diffRange(Buffer.from(v, 'utf8'), Buffer.from(expected, 'utf8'));
      report({ table: 'meta', row: `key=${key}`, column: 'value', ...(r ? { bytes: r } : {}), message: `${JSON.stringify(v)}, expected ${JSON.stringify(expected)}` });
    }
  };
  checkMeta('schema_version', String(SCHEMA_VERSION));
  checkMeta('origin', o.origin);

  // --- tree row ---
  const tree = db.prepare('SELECT tree_size, root_hash, checkpoint FROM tree WHERE id = 1').get() as { tree_size: number; root_hash: Buffer; checkpoint: string } | undefined;
  if (tree === undefined) report({ table: 'tree', row: 'id=1', message: 'row is missing' });

  // --- entries, tiles and checkpoints, streamed together ---
  const entryPage = db.prepare('SELECT idx, leaf, leaf_hash, file_hash, ecosystem, name, version, sha256, integrated_time FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?');
  const cpPage = db.prepare('SELECT tree_size, root_hash, note FROM checkpoints WHERE tree_size > ? ORDER BY tree_size LIMIT ?');
  const tileRow = db.prepare('SELECT id, level, idx, width, data, inner FROM tiles WHERE id = ?');
  const range = new CompactRange();
  const levels: Buffer[][] = []; // per tile level, the hashes of its current (not yet full) tile
  const tileIndex: number[] = [];
  let tilesChecked = 0;

  const storedTile = (level: number, index: number) =>
    tileRow.get(tileId(level, index)) as { id: number; level: number; idx: number; width: number; data: Buffer; inner: Buffer | null } | undefined;

  const checkTile = (level: number, index: number, hashes: Buffer[]) => {
    tilesChecked++;
    const row = `id=${tileId(level, index)} (level ${level}, index ${index})`;
    const t = storedTile(level, index);
    const width = hashes.length;
    if (t === undefined) return report({ table: 'tiles', row, message: `row is missing (expected width ${width})` });
    if (t.level !== level || t.idx !== index) report({ table: 'tiles', row, message: `its level/idx columns say ${t.level}/${t.idx}` });
    if (t.width !== width) report({ table: 'tiles', row, column: 'width', message: `${t.width}, expected ${width}` });
    const data = Buffer.concat(hashes);
    const r = diffRange(t.data, data);
    if (r !== undefined) {
      const h0 = Math.floor(r[0] / 32);
      const h1 = Math.floor(r[1] / 32);
      report({ table: 'tiles', row, column: 'data', bytes: r, message: `hash${h0 === h1 ? ` ${h0}` : `es ${h0}–${h1}`} differ${h0 === h1 ? 's' : ''} from the one recomputed from the entries` });
    }
    if (width === TILE_WIDTH) {
      const inner = Buffer.concat(innerLevels(data, TILE_WIDTH).slice(1));
      if (t.inner === null) report({ table: 'tiles', row, column: 'inner', message: 'a full tile without its inner levels' });
      else {
        const ri = diffRange(t.inner, inner);
        if (ri !== undefined) report({ table: 'tiles', row, column: 'inner', bytes: ri, message: 'stored inner levels differ from the ones recomputed from the tile' });
      }
    } else if (t.inner !== null) report({ table: 'tiles', row, column: 'inner', message: 'a partial tile with inner levels' });
  };

  const addHash = (level: number, h: Buffer) => {
    if (levels[level] === undefined) {
      levels[level] = [];
      tileIndex[level] = 0;
    }
    const buf = levels[level]!;
    buf.push(h);
    if (buf.length === TILE_WIDTH) {
      checkTile(level, tileIndex[level]!, buf);
      const top = innerLevels(Buffer.concat(buf), TILE_WIDTH)[TILE_HEIGHT_MINUS_1]!;
      levels[level] = [];
      tileIndex[level]!++;
      addHash(level + 1, nodeHash(top.subarray(0, 32), top.subarray(32, 64)));
    }
  };

  // Checkpoints are compared with the root when the stream reaches their size.
  let cpBuffer: Array<{ tree_size: number; root_hash: Buffer; note: string }> = [];
  let cpAfter = -1;
  let checkpointsChecked = 0;
  const nextCheckpoint = () => {
    if (cpBuffer.length === 0) {
      cpBuffer = cpPage.all(cpAfter, pageSize) as typeof cpBuffer;
      if (cpBuffer.length > 0) cpAfter = cpBuffer[cpBuffer.length - 1]!.tree_size;
    }
    return cpBuffer[0];
  };
  const expectedNote = (size: number, root: Hash) =>
    o.signer === undefined ? undefined : signNote(formatCheckpoint({ origin: o.origin, treeSize: size, rootHash: root, extensions: [] }), [o.signer]);

  /** Checks a stored note (checkpoints.note or tree.checkpoint) of `size` against the recomputed root. */
  const checkNote = (table: string, row: string, column: string, note: string, size: number, root: Hash, rootColumn: Buffer | undefined) => {
    let parsed: { treeSize: number; rootHash: Buffer; origin: string } | undefined;
    try {
      parsed = parseCheckpoint(verifyNote(note, [o.logVerifier, ...(o.otherLogVerifiers ?? [])]).note.text);
    } catch (e) {
      const expected = expectedNote(size, root);
      // The recomputed note holds the Ed25519 line only; lines after it (the log's ML-DSA-44 cosignature, randomized)
      // cannot be recomputed, so only the bytes the recomputed note covers are compared.
      const stored = Buffer.from(note, 'utf8');
      const exp = expected === undefined ? undefined : Buffer.from(expected, 'utf8');
      const tail = exp !== undefined && stored.length > exp.length && (o.otherLogVerifiers?.length ?? 0) > 0;
      // Nothing differs in what could be recomputed: the damage is in those later lines, which are named as the range.
      const r = exp === undefined ? undefined : tail ? diffRange(stored.subarray(0, exp.length), exp) ?? [exp.length, stored.length - 1] : diffRange(stored, exp);
      report({ table, row, column, ...(r ? { bytes: r } : {}), message: `not a checkpoint signed by the log key: ${(e as Error).message}` });
      return;
    }
    if (parsed.origin !== o.origin) report({ table, row, column, message: `origin ${parsed.origin}, expected ${o.origin}` });
    if (parsed.treeSize !== size) report({ table, row, column, message: `size ${parsed.treeSize}, expected ${size}` });
    const noteOk = same(parsed.rootHash, root);
    if (rootColumn !== undefined && !same(rootColumn, root) && noteOk) {
      report({ table, row, column: 'root_hash', bytes: diffRange(rootColumn, root)!, message: 'differs from the root in the signed note and the root recomputed from the entries' });
    } else if (!noteOk) {
      const both = rootColumn !== undefined && same(rootColumn, parsed.rootHash) ? ' (as does its root_hash column)' : '';
      report({ table, row, column, message: `its root ${parsed.rootHash.toString('base64')}${both} is not the root recomputed from the entries, ${root.toString('base64')}` });
    }
  };

  const checkCheckpointsAt = (size: number) => {
    for (let cp = nextCheckpoint(); cp !== undefined && cp.tree_size <= size; cp = nextCheckpoint()) {
      cpBuffer.shift();
      checkpointsChecked++;
      const row = `tree_size=${cp.tree_size}`;
      if (cp.tree_size < size) {
        report({ table: 'checkpoints', row, message: `size ${cp.tree_size} could not be checked (entries missing before it)` });
        continue;
      }
      const root = range.root();
      checkNote('checkpoints', row, 'note', cp.note, size, root, cp.root_hash);
    }
  };

  let next = 0;
  let broken = false; // an index gap: no root can be recomputed past it
  let tileHashes: Buffer | undefined; // the stored level-0 tile the current page's entries fall into
  let tileHashesIndex = -1;
  const storedLeafHash = (index: number): Buffer | undefined => {
    const ti = Math.floor(index / TILE_WIDTH);
    if (ti !== tileHashesIndex) {
      tileHashes = storedTile(0, ti)?.data;
      tileHashesIndex = ti;
    }
    const off = (index % TILE_WIDTH) * 32;
    return tileHashes !== undefined && tileHashes.length >= off + 32 ? tileHashes.subarray(off, off + 32) : undefined;
  };
  for (;;) {
    const rows = entryPage.all(next, pageSize) as Array<{ idx: number; leaf: Buffer; leaf_hash: Buffer; file_hash: Buffer; ecosystem: string; name: string; version: string; sha256: Buffer; integrated_time: number }>;
    if (rows.length === 0) break;
    for (const e of rows) {
      const row = `idx=${e.idx}`;
      if (e.idx !== next && !broken) {
        report({ table: 'entries', row: `idx=${next}`, message: `rows ${next}…${e.idx - 1} are missing` });
        broken = true;
      }
      if (!broken) checkCheckpointsAt(e.idx);
      next = e.idx + 1;
      // Leaf hash: the leaf re-hashed, the leaf_hash column and the level-0 tile; the odd one out is wrong.
      const computed = leafHash(e.leaf);
      const inTile = storedLeafHash(e.idx);
      let truth = computed;
      if (!same(computed, e.leaf_hash)) {
        if (inTile !== undefined && same(e.leaf_hash, inTile)) {
          truth = e.leaf_hash;
          report({ table: 'entries', row, column: 'leaf', bytes: [0, e.leaf.length - 1], message: 'the leaf does not hash to its leaf_hash, which its level-0 tile agrees with: the leaf bytes were changed' });
        } else if (inTile !== undefined && same(computed, inTile)) {
          report({ table: 'entries', row, column: 'leaf_hash', bytes: diffRange(e.leaf_hash, computed)!, message: 'differs from the hash of the leaf (and its level-0 tile)' });
        } else {
          report({ table: 'entries', row, column: 'leaf_hash', bytes: diffRange(e.leaf_hash, computed)!, message: 'differs from the hash of the leaf' });
        }
      }
      // The columns that index the entry, against the decoded leaf (unless the leaf itself is known to be damaged).
      if (truth === computed) {
        try {
          const d = decodeLeaf(e.leaf);
          const col = (column: string, actual: Uint8Array, expected: Uint8Array, what: string) => {
            const r = diffRange(actual, expected);
            if (r !== undefined) report({ table: 'entries', row, column, bytes: r, message: `differs from the leaf's ${what}` });
          };
          col('file_hash', e.file_hash, sha256(Buffer.from(fileKey(d), 'utf8')), 'file key hash');
          col('ecosystem', Buffer.from(e.ecosystem, 'utf8'), Buffer.from(d.ecosystem, 'utf8'), 'ecosystem');
          col('name', Buffer.from(e.name, 'utf8'), Buffer.from(d.name, 'utf8'), 'name');
          col('version', Buffer.from(e.version, 'utf8'), Buffer.from(d.version, 'utf8'), 'version');
          col('sha256', e.sha256, Buffer.from(d.sha256, 'hex'), 'sha256');
          if (e.integrated_time !== d.integratedTime) report({ table: 'entries', row, column: 'integrated_time', message: `${e.integrated_time}, the leaf says ${d.integratedTime}` });
        } catch (err) {
          if (same(computed, e.leaf_hash)) report({ table: 'entries', row, column: 'leaf', bytes: [0, e.leaf.length - 1], message: `does not decode: ${(err as Error).message}` });
        }
      }
      if (!broken) {
        range.push(truth);
        addHash(0, truth);
      }
    }
  }
  const size = next;
  if (!broken) checkCheckpointsAt(size);
  // Partial right-edge tiles, and tiles beyond the tree.
  if (!broken) {
    for (let level = 0; level < levels.length; level++) {
      if (levels[level]!.length > 0) checkTile(level, tileIndex[level]!, levels[level]!);
    }
  }
  const extraTiles = db.prepare('SELECT id, level, idx, width FROM tiles WHERE level = ? AND idx >= ? ORDER BY idx LIMIT 10');
  for (let level = 0, count = size; level <= 63; level++, count = Math.floor(count / TILE_WIDTH)) {
    const expectedTiles = Math.ceil(count / TILE_WIDTH);
    for (const t of extraTiles.all(level, expectedTiles) as Array<{ id: number; level: number; idx: number; width: number }>) {
      report({ table: 'tiles', row: `id=${t.id} (level ${t.level}, index ${t.idx})`, message: `beyond the tree of ${size} entries` });
    }
    if (count === 0 && level > 0) {
      const above = db.prepare('SELECT count(*) AS n FROM tiles WHERE level > ?').get(level) as { n: number };
      if (above.n > 0) report({ table: 'tiles', row: `level>${level}`, message: `${above.n} rows above the tree's highest level` });
      break;
    }
  }
  for (let cp = nextCheckpoint(); cp !== undefined; cp = nextCheckpoint()) {
    cpBuffer.shift();
    checkpointsChecked++;
    report({ table: 'checkpoints', row: `tree_size=${cp.tree_size}`, message: `beyond the ${size} entries stored` });
  }

  // --- the tree row against everything ---
  if (tree !== undefined && !broken) {
    const root = range.root();
    if (tree.tree_size !== size) report({ table: 'tree', row: 'id=1', column: 'tree_size', message: `${tree.tree_size}, but ${size} entries are stored` });
    else {
      checkNote('tree', 'id=1', 'checkpoint', tree.checkpoint, size, root, tree.root_hash);
      const stored = db.prepare('SELECT note FROM checkpoints WHERE tree_size = ?').get(size) as { note: string } | undefined;
      if (stored !== undefined && stored.note !== tree.checkpoint) {
        const r = diffRange(Buffer.from(tree.checkpoint, 'utf8'), Buffer.from(stored.note, 'utf8'));
        report({ table: 'tree', row: 'id=1', column: 'checkpoint', ...(r ? { bytes: r } : {}), message: `differs from the checkpoints row of size ${size}` });
      }
    }
  }

  // --- cosignatures ---
  const cosPage = db.prepare('SELECT tree_size, key_name, key_id, line FROM cosignatures WHERE (tree_size, key_name, key_id) > (?, ?, ?) ORDER BY tree_size, key_name, key_id LIMIT ?');
  const noteAt = db.prepare('SELECT note FROM checkpoints WHERE tree_size = ?');
  let cosignatures = 0;
  let unverified = 0;
  let after: [number, string, Buffer] = [-1, '', Buffer.alloc(0)];
  for (;;) {
    const rows = cosPage.all(after[0], after[1], after[2], pageSize) as Array<{ tree_size: number; key_name: string; key_id: Buffer; line: string }>;
    if (rows.length === 0) break;
    for (const c of rows) {
      cosignatures++;
      const row = `tree_size=${c.tree_size} key_name=${c.key_name} key_id=${c.key_id.toString('hex')}`;
      const m = /^— (\S+) (\S+)$/.exec(c.line);
      let sigBytes: Buffer | undefined;
      try {
        if (m !== null) sigBytes = decodeBase64(m[2]!, 'signature');
      } catch {
        sigBytes = undefined;
      }
      if (m === null || sigBytes === undefined || sigBytes.length < 5) {
        report({ table: 'cosignatures', row, column: 'line', message: 'not a signature line' });
        continue;
      }
      if (m[1] !== c.key_name) report({ table: 'cosignatures', row, column: 'key_name', message: `the line is signed by ${m[1]}` });
      const idRange = diffRange(c.key_id, sigBytes.subarray(0, 4));
      if (idRange !== undefined) report({ table: 'cosignatures', row, column: 'key_id', bytes: idRange, message: "differs from the line's key ID" });
      const note = (noteAt.get(c.tree_size) as { note: string } | undefined)?.note;
      if (note === undefined) {
        report({ table: 'cosignatures', row, message: `no checkpoint of size ${c.tree_size}` });
        continue;
      }
      const witness = (o.witnessVerifiers ?? []).find((v) => v.name === m[1] && same(v.keyId, sigBytes!.subarray(0, 4)));
      if (witness === undefined) {
        unverified++;
        continue;
      }
      try {
        verifyNote(note + c.line + '\n', [witness]);
      } catch (e) {
        const start = Buffer.byteLength(`— ${m[1]} `, 'utf8');
        report({ table: 'cosignatures', row, column: 'line', bytes: [start, Buffer.byteLength(c.line, 'utf8') - 1], message: `the cosignature does not verify with ${witness.name}'s key: ${(e as Error).message}` });
      }
    }
    const last = rows[rows.length - 1]!;
    after = [last.tree_size, last.key_name, last.key_id];
  }

  return { problems, entries: size, tiles: tilesChecked, checkpoints: checkpointsChecked, cosignatures, unverifiedCosignatures: unverified };
}

const TILE_HEIGHT_MINUS_1 = 7;
