/**
 * The log's Store on PostgreSQL (the `pg` driver), with the same guarantees as SQLite (log-store/store.ts):
 * append-only enforced by triggers (log-store/pg-schema.ts), the tree advanced only by compare-and-swap on its old
 * size, a batch (entries, tiles, checkpoint, tree row) in ONE transaction, append() resolving only after COMMIT.
 *
 * BIGINT values come back from the server as decimal strings; they are parsed here exactly, and any value beyond
 * 2^53 − 1 is refused ('internal') rather than rounded. BYTEA is a Buffer both ways.
 *
 * Immutable reads are cached (bounded LRU): full hash tiles (width 256: never change again), full entry bundles, and
 * signed checkpoint notes. Everything else (the tree row, partial tiles, lookups) is read from the database, so
 * several processes may share one database (one sequencer at a time: see AppendHook in types.ts).
 */
import pg from 'pg';
import { LRUCache } from 'lru-cache';
import { fail, PkglogError } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';
import type { Tile } from '../core/tiles.ts';
import type { AppendBatch, AppendHook, EntryRef, Store, StoredTile, TreeState } from './types.ts';
import { migratePostgres, postgresMigrationStatus, redactUrl } from './migrations.ts';

export { redactUrl };

const INT8_OID = 20;

/** A BIGINT as a JavaScript number, exactly (refused beyond 2^53 − 1). */
export function parseBigint(s: string): number {
  if (!/^-?(0|[1-9][0-9]*)$/.test(s)) fail('internal', `not an integer from the database: ${JSON.stringify(s.slice(0, 40))}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) fail('internal', `integer ${s} from the database is beyond 2^53 − 1`);
  return n;
}

/** Type parsers for this store's connections only (the process-wide pg.types stay untouched). */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return parseBigint;
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as unknown as pg.CustomTypesConfig;

/** True for the URLs this store accepts: postgres:// or postgresql://. */
export function isPostgresUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

/** Something a query can run on: the pool, or the client of an open transaction. */
export type Queryable = Pick<pg.PoolClient, 'query'>;


export interface PostgresOptions {
  /** Connections in the pool (default 8). */
  maxConnections?: number;
  /** Run pending migrations at open (default true; under an advisory lock, log-store/migrations.ts). */
  migrate?: boolean;
  /** Application name the server shows in pg_stat_activity. */
  applicationName?: string;
}

const FULL = 256;
const TILE_KEY = (level: number, index: number) => level * 2 ** 46 + index;

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly location: string;
  readonly pool: pg.Pool;
  private open = true;
  private readonly fullTiles = new LRUCache<number, StoredTile>({ max: 4096 }); // ≤ 4096 · 16 KiB
  private readonly bundles = new LRUCache<number, Buffer[]>({ max: 256 });
  private readonly notes = new LRUCache<number, string>({ max: 1024 });

  private constructor(url: string, pool: pg.Pool) {
    this.location = redactUrl(url);
    this.pool = pool;
  }

  /** Connects (checking the server answers) and, unless told not to, runs the pending migrations. */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresStore> {
    if (!isPostgresUrl(url)) fail('usage', `--database must be a postgres:// URL, not ${JSON.stringify(url.slice(0, 80))}`);
    const pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 8,
      types: TYPES,
      application_name: options.applicationName ?? 'pkglog',
      connectionTimeoutMillis: 10_000,
    });
    pool.on('error', () => {}); // an idle connection dropped by the server: the next query reconnects
    const store = new PostgresStore(url, pool);
    try {
      await pool.query('SELECT 1');
      if (options.migrate !== false) await migratePostgres(pool);
      else await store.checkSchema();
    } catch (e) {
      await pool.end().catch(() => {});
      throw wrap(e, `cannot open the PostgreSQL store ${store.location}`);
    }
    return store;
  }

  /** Refuses a database whose schema is not exactly the one this version knows (migrate first). */
  private async checkSchema(): Promise<void> {
    const { pending, newer } = await postgresMigrationStatus(this.pool);
    if (newer !== undefined) fail('internal', `the database ${this.location} has schema version ${newer}, newer than this pkglog knows`);
    if (pending.length > 0) fail('internal', `the database ${this.location} needs migrations ${pending.join(', ')}: run \`pkglog migrate --database URL\``);
  }

  get isOpen(): boolean {
    return this.open;
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    await this.pool.end();
  }

  /** Runs `fn` in one transaction on one connection (COMMIT when it resolves, ROLLBACK when it throws). */
  async transaction<T>(fn: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      let out: T;
      try {
        out = await fn(client);
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw e;
      }
      await client.query('COMMIT');
      return out;
    } catch (e) {
      broken ||= !(e instanceof PkglogError) && (e as { code?: unknown }).code === undefined;
      throw e;
    } finally {
      client.release(broken);
    }
  }

  async getMeta(key: string): Promise<string | undefined> {
    const r = await this.pool.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
    return r.rows[0]?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.pool.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async raiseMeta(key: string, value: number): Promise<void> {
    if (!Number.isSafeInteger(value) || value < 0) fail('internal', `raiseMeta(${key}): ${value} is not a size`);
    await this.pool.query(
      'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value ' +
        "WHERE CASE WHEN meta.value ~ '^[0-9]{1,16}$' THEN meta.value::bigint < $3::bigint ELSE true END",
      [key, String(value), value],
    );
  }

  async treeState(): Promise<TreeState | undefined> {
    const r = await this.pool.query<{ tree_size: number; root_hash: Buffer; checkpoint: string }>(
      'SELECT tree_size, root_hash, checkpoint FROM tree WHERE id = 1',
    );
    const row = r.rows[0];
    return row && { treeSize: row.tree_size, rootHash: row.root_hash, checkpoint: row.checkpoint };
  }

  async initialize(empty: TreeState, createdAt: number): Promise<void> {
    await this.transaction(async (tx) => {
      const r = await tx.query('INSERT INTO tree (id, tree_size, root_hash, checkpoint) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING',
        [empty.treeSize, empty.rootHash, empty.checkpoint]);
      if (r.rowCount !== 1) return;
      await tx.query('INSERT INTO checkpoints (tree_size, root_hash, note, created_at) VALUES ($1, $2, $3, $4)',
        [empty.treeSize, empty.rootHash, empty.checkpoint, createdAt]);
    });
  }

  async append(batch: AppendBatch, fence?: AppendHook): Promise<void> {
    const { newState } = batch;
    await this.transaction(async (tx) => {
      const cas = await tx.query('UPDATE tree SET tree_size = $1, root_hash = $2, checkpoint = $3 WHERE id = 1 AND tree_size = $4',
        [newState.treeSize, newState.rootHash, newState.checkpoint, batch.oldSize]);
      if (cas.rowCount !== 1) fail('inconsistent', `tree is no longer at size ${batch.oldSize}`);
      const es = batch.entries;
      if (es.length > 0) {
        await tx.query(
          'INSERT INTO entries (idx, leaf, leaf_hash, file_hash, ecosystem, name, version, sha256, integrated_time) ' +
            'SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bigint[])',
          [es.map((e) => e.index), es.map((e) => e.leaf), es.map((e) => e.leafHash), es.map((e) => e.fileHash), es.map((e) => e.ecosystem),
            es.map((e) => e.name), es.map((e) => e.version), es.map((e) => e.sha256), es.map((e) => e.integratedTime)],
        );
      }
      const ts = batch.tiles;
      if (ts.length > 0) {
        for (const t of ts) TILE_KEY_CHECK(t.tile.level, t.tile.index);
        await tx.query(
          'INSERT INTO tiles (level, idx, width, data, inner_levels) ' +
            'SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::smallint[], $4::bytea[], $5::bytea[]) ' +
            'ON CONFLICT (level, idx) DO UPDATE SET width = excluded.width, data = excluded.data, inner_levels = excluded.inner_levels',
          [ts.map((t) => t.tile.level), ts.map((t) => t.tile.index), ts.map((t) => t.tile.width), ts.map((t) => t.data), ts.map((t) => t.inner ?? null)],
        );
      }
      await tx.query('INSERT INTO checkpoints (tree_size, root_hash, note, created_at) VALUES ($1, $2, $3, $4)',
        [newState.treeSize, newState.rootHash, newState.checkpoint, batch.createdAt]);
      if (fence !== undefined) await fence(tx);
    });
  }

  async tileWithInner(level: number, index: number): Promise<StoredTile | undefined> {
    TILE_KEY_CHECK(level, index);
    const key = TILE_KEY(level, index);
    const hit = this.fullTiles.get(key);
    if (hit !== undefined) return hit;
    const r = await this.pool.query<{ width: number; data: Buffer; inner_levels: Buffer | null }>(
      'SELECT width, data, inner_levels FROM tiles WHERE level = $1 AND idx = $2', [level, index]);
    const row = r.rows[0];
    if (row === undefined) return undefined;
    const t: StoredTile = row.inner_levels === null ? { width: row.width, data: row.data } : { width: row.width, data: row.data, inner: row.inner_levels };
    if (t.width === FULL) this.fullTiles.set(key, t);
    return t;
  }

  async readTile(tile: Tile): Promise<Buffer | undefined> {
    return (await this.readTiles([tile]))[0];
  }

  async readTiles(tiles: Tile[]): Promise<Array<Buffer | undefined>> {
    const out: Array<Buffer | undefined> = new Array(tiles.length).fill(undefined);
    const ask: number[] = [];
    for (const [i, t] of tiles.entries()) {
      TILE_KEY_CHECK(t.level, t.index);
      const hit = this.fullTiles.get(TILE_KEY(t.level, t.index));
      if (hit !== undefined) out[i] = prefix(hit, t.width);
      else ask.push(i);
    }
    if (ask.length === 0) return out;
    const r = await this.pool.query<{ level: number; idx: number; width: number; data: Buffer; inner_levels: Buffer | null }>(
      'SELECT t.level, t.idx, t.width, t.data, t.inner_levels FROM tiles t JOIN unnest($1::smallint[], $2::bigint[]) AS k (level, idx) ' +
        'ON t.level = k.level AND t.idx = k.idx',
      [ask.map((i) => tiles[i]!.level), ask.map((i) => tiles[i]!.index)],
    );
    const found = new Map<number, StoredTile>();
    for (const row of r.rows) {
      const t: StoredTile = row.inner_levels === null ? { width: row.width, data: row.data } : { width: row.width, data: row.data, inner: row.inner_levels };
      found.set(TILE_KEY(row.level, row.idx), t);
      if (t.width === FULL) this.fullTiles.set(TILE_KEY(row.level, row.idx), t);
    }
    for (const i of ask) {
      const t = found.get(TILE_KEY(tiles[i]!.level, tiles[i]!.index));
      out[i] = t === undefined ? undefined : prefix(t, tiles[i]!.width);
    }
    return out;
  }

  async entryRows(start: number, end: number): Promise<Array<{ index: number; leaf: Buffer; leafHash: Buffer }>> {
    const r = await this.pool.query<{ idx: number; leaf: Buffer; leaf_hash: Buffer }>(
      'SELECT idx, leaf, leaf_hash FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx', [start, end]);
    return r.rows.map((row) => ({ index: row.idx, leaf: row.leaf, leafHash: row.leaf_hash }));
  }

  async lastEntryIndex(): Promise<number> {
    const r = await this.pool.query<{ idx: number }>('SELECT idx FROM entries ORDER BY idx DESC LIMIT 1');
    return r.rows[0]?.idx ?? -1;
  }

  async lastCheckpointSize(): Promise<number> {
    const r = await this.pool.query<{ tree_size: number }>('SELECT tree_size FROM checkpoints ORDER BY tree_size DESC LIMIT 1');
    return r.rows[0]?.tree_size ?? -1;
  }

  async firstCheckpointSizeIn(lo: number, hi: number): Promise<number | undefined> {
    const r = await this.pool.query<{ tree_size: number }>(
      'SELECT tree_size FROM checkpoints WHERE tree_size >= $1 AND tree_size < $2 ORDER BY tree_size LIMIT 1', [lo, hi]);
    return r.rows[0]?.tree_size;
  }

  async entryLeaf(index: number): Promise<Buffer | undefined> {
    const bundle = this.bundles.get(Math.floor(index / FULL));
    if (bundle !== undefined) return bundle[index % FULL];
    const r = await this.pool.query<{ leaf: Buffer }>('SELECT leaf FROM entries WHERE idx = $1', [index]);
    return r.rows[0]?.leaf;
  }

  async entryLeaves(start: number, end: number): Promise<Buffer[]> {
    const whole = start % FULL === 0 && end - start === FULL;
    if (whole) {
      const hit = this.bundles.get(start / FULL);
      if (hit !== undefined) return hit;
    }
    const r = await this.pool.query<{ leaf: Buffer }>('SELECT leaf FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx', [start, end]);
    const leaves = r.rows.map((row) => row.leaf);
    if (whole && leaves.length === FULL) this.bundles.set(start / FULL, leaves);
    return leaves;
  }

  async findByFile(fileHash: Hash): Promise<EntryRef | undefined> {
    return (await this.findByFiles([fileHash]))[0];
  }

  async findByFiles(fileHashes: Hash[]): Promise<Array<EntryRef | undefined>> {
    if (fileHashes.length === 0) return [];
    const r = await this.pool.query<{ idx: number; leaf: Buffer; file_hash: Buffer }>(
      'SELECT idx, leaf, file_hash FROM entries WHERE file_hash = ANY($1::bytea[])', [fileHashes]);
    const byHash = new Map(r.rows.map((row) => [row.file_hash.toString('latin1'), { index: row.idx, leaf: row.leaf }]));
    return fileHashes.map((h) => byHash.get(Buffer.from(h).toString('latin1')));
  }

  async findByLeafHash(leafHash: Hash, treeSize: number): Promise<number | undefined> {
    const r = await this.pool.query<{ idx: number }>(
      'SELECT idx FROM entries WHERE leaf_hash = $1 AND idx < $2 ORDER BY idx LIMIT 1', [leafHash, treeSize]);
    return r.rows[0]?.idx;
  }

  async lookupPackage(ecosystem: string, name: string, version: string | undefined, after: number, limit: number): Promise<EntryRef[]> {
    const r = version === undefined
      ? await this.pool.query<{ idx: number; leaf: Buffer }>(
        'SELECT idx, leaf FROM entries WHERE ecosystem = $1 AND name = $2 AND idx > $3 ORDER BY idx LIMIT $4', [ecosystem, name, after, limit])
      : await this.pool.query<{ idx: number; leaf: Buffer }>(
        'SELECT idx, leaf FROM entries WHERE ecosystem = $1 AND name = $2 AND version = $3 AND idx > $4 ORDER BY idx LIMIT $5',
        [ecosystem, name, version, after, limit]);
    return r.rows.map((row) => ({ index: row.idx, leaf: row.leaf }));
  }

  async lookupSha256(sha256: Buffer, after: number, limit: number): Promise<EntryRef[]> {
    const r = await this.pool.query<{ idx: number; leaf: Buffer }>(
      'SELECT idx, leaf FROM entries WHERE sha256 = $1 AND idx > $2 ORDER BY idx LIMIT $3', [sha256, after, limit]);
    return r.rows.map((row) => ({ index: row.idx, leaf: row.leaf }));
  }

  async checkpoint(treeSize: number): Promise<string | undefined> {
    const hit = this.notes.get(treeSize);
    if (hit !== undefined) return hit;
    const r = await this.pool.query<{ note: string }>('SELECT note FROM checkpoints WHERE tree_size = $1', [treeSize]);
    const note = r.rows[0]?.note;
    if (note !== undefined) this.notes.set(treeSize, note);
    return note;
  }

  async addCosignatures(treeSize: number, sigs: Array<{ keyName: string; keyId: Buffer; line: string }>): Promise<void> {
    if (sigs.length === 0) return;
    await this.pool.query(
      'INSERT INTO cosignatures (tree_size, key_name, key_id, line) SELECT $1, * FROM unnest($2::text[], $3::bytea[], $4::text[]) ON CONFLICT DO NOTHING',
      [treeSize, sigs.map((s) => s.keyName), sigs.map((s) => s.keyId), sigs.map((s) => s.line)],
    );
  }

  async cosignatureLines(treeSize: number): Promise<string[]> {
    const r = await this.pool.query<{ line: string }>('SELECT line FROM cosignatures WHERE tree_size = $1 ORDER BY key_name, key_id', [treeSize]);
    return r.rows.map((row) => row.line);
  }

  async cosignedSizes(minSize: number): Promise<Array<{ treeSize: number; count: number }>> {
    const r = await this.pool.query<{ tree_size: number; n: number }>(
      'SELECT tree_size, count(*) AS n FROM cosignatures WHERE tree_size >= $1 GROUP BY tree_size ORDER BY tree_size DESC LIMIT 64', [minSize]);
    return r.rows.map((row) => ({ treeSize: row.tree_size, count: row.n }));
  }
}

function prefix(t: StoredTile, width: number): Buffer | undefined {
  if (t.width < width) return undefined;
  return t.width === width ? t.data : t.data.subarray(0, width * 32);
}

/** The same tile coordinates SQLite accepts (log-store/store.ts tileId): anything else is 'out_of_range'. */
function TILE_KEY_CHECK(level: number, index: number): void {
  if (!Number.isInteger(level) || level < 0 || level > 63 || !Number.isSafeInteger(index) || index < 0 || index >= 2 ** 46) {
    fail('out_of_range', `tile ${level}/${index} is outside any tree this log can hold`);
  }
}

/** A connection failure as one PkglogError naming the database; other errors (SQL, PkglogError) unchanged. */
function wrap(e: unknown, what: string): unknown {
  if (e instanceof PkglogError) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return e; // a server error: keep its SQLSTATE
  return new PkglogError('network', `${what}: ${(e as Error)?.message ?? String(e)}`);
}
