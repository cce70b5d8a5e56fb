/**
 * Many front ends, one sequencer, coordinated through PostgreSQL (docs/operations.md#scaling-out).
 *
 * - The lease (`sequencer_lease`, one row): the process that may sequence is the row's holder while `expires_at` (the
 *   DATABASE's clock, never a front end's) is in the future. It is taken by compare-and-swap on an expired row, which
 *   raises `epoch`; the holder renews it by CAS on (holder, epoch) before it expires. A front end that lost it never
 *   gets it back under the same epoch.
 * - The fence: every commit runs fence() first, in the same transaction as the tree CAS. fence() locks the lease row
 *   (FOR UPDATE) and checks it is still (holder, epoch) and unexpired, so no takeover can happen between the check and
 *   the commit: a sequencer that lost its lease (paused, partitioned, slow) can never commit, whatever it signed.
 * - The pending queue (`pending`): a front end that verified a submission inserts it, keyed by its file hash (UNIQUE,
 *   so a resubmission of a queued file is not queued twice), NOTIFYs `pkglog_pending`, and waits until an entry with
 *   that file hash is in the log. The sequencer takes the oldest rows and deletes them in its commit transaction; each
 *   commit NOTIFYs `pkglog_committed` (delivered at COMMIT). Waiting front ends also poll, so a lost notification
 *   only delays an answer.
 * Nothing here grows with the log: every statement is a primary-key or unique-index lookup, or a bounded scan of the
 * pending queue (at most `limit` rows).
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { fail } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';

/** A connection or a pool: anything that runs a query (inside a transaction when it is the transaction's client). */
export type Queryable = Pick<pg.ClientBase, 'query'>;

export const PENDING_CHANNEL = 'pkglog_pending';
export const COMMITTED_CHANNEL = 'pkglog_committed';

/** The tables of the coordination, created idempotently (part of the PostgreSQL schema). */
export const SEQUENCING_SCHEMA = `
CREATE TABLE IF NOT EXISTS sequencer_lease (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  holder     TEXT NOT NULL,
  epoch      BIGINT NOT NULL CHECK (epoch >= 0),
  expires_at TIMESTAMPTZ NOT NULL
);
INSERT INTO sequencer_lease (id, holder, epoch, expires_at) VALUES (1, '', 0, '-infinity') ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS pending (
  id         BIGSERIAL PRIMARY KEY,
  file_hash  BYTEA NOT NULL UNIQUE CHECK (length(file_hash) = 32),
  submission TEXT NOT NULL,
  queued_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
`;

/** Creates the coordination tables (idempotent; concurrent callers are serialized by an advisory lock). */
export async function ensureSequencingSchema(pool: pg.Pool): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query("SELECT pg_advisory_xact_lock(hashtext('pkglog sequencing schema'))");
    await c.query(SEQUENCING_SCHEMA);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

export interface LeaseState {
  holder: string;
  epoch: number;
  /** Milliseconds until it expires by the database's clock (≤ 0: expired, anyone may take it). */
  remainingMs: number;
}

export class SequencerLease {
  readonly holder: string;
  readonly ttlMs: number;
  private readonly db: Queryable;

  constructor(db: Queryable, options: { holder: string; ttlMs: number }) {
    if (options.holder === '') fail('usage', 'a lease holder needs a name');
    if (!Number.isInteger(options.ttlMs) || options.ttlMs < 100) fail('usage', 'the lease TTL must be at least 100 ms');
    this.db = db;
    this.holder = options.holder;
    this.ttlMs = options.ttlMs;
  }

  /** Takes the lease if it is expired (or was released): the new epoch, or undefined when another holder has it. */
  async tryAcquire(): Promise<number | undefined> {
    const r = await this.db.query<{ epoch: string }>(
      `UPDATE sequencer_lease SET holder = $1, epoch = epoch + 1, expires_at = clock_timestamp() + $2 * interval '1 millisecond'
       WHERE id = 1 AND expires_at <= clock_timestamp() RETURNING epoch`, [this.holder, this.ttlMs]);
    return r.rowCount === 1 ? Number(r.rows[0]!.epoch) : undefined;
  }

  /** Extends the lease of `epoch` by the TTL from now, if this holder still has it unexpired; false when it is lost. */
  async renew(epoch: number): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE sequencer_lease SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
       WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > clock_timestamp()`, [this.holder, epoch, this.ttlMs]);
    return r.rowCount === 1;
  }

  /** Gives the lease up at once (graceful shutdown: another front end takes over without waiting for the TTL). */
  async release(epoch: number): Promise<void> {
    await this.db.query(`UPDATE sequencer_lease SET expires_at = '-infinity' WHERE id = 1 AND holder = $1 AND epoch = $2`, [this.holder, epoch]);
  }

  /**
   * The fence, run first inside the commit transaction on its client `tx`: locks the lease row until the transaction
   * ends and throws 'overloaded' (nothing is committed; the transaction must be rolled back) unless this holder still
   * has the lease of `epoch`, unexpired by the database's clock.
   */
  async fence(tx: Queryable, epoch: number): Promise<void> {
    const r = await tx.query<{ holder: string; epoch: string; live: boolean }>(
      'SELECT holder, epoch, expires_at > clock_timestamp() AS live FROM sequencer_lease WHERE id = 1 FOR UPDATE');
    const row = r.rows[0];
    if (row === undefined || row.holder !== this.holder || Number(row.epoch) !== epoch || !row.live) {
      fail('overloaded', `this front end no longer holds the sequencer lease of epoch ${epoch}` +
        (row === undefined ? '' : ` (now: epoch ${row.epoch}, ${row.holder === '' ? 'nobody' : row.holder}${row.live ? '' : ', expired'})`) +
        '; the batch was not committed; retry');
    }
  }

  /** Who holds the lease now. */
  async current(): Promise<LeaseState> {
    const r = await this.db.query<{ holder: string; epoch: string; remaining: number | null }>(
      `SELECT holder, epoch, (extract(epoch from (expires_at - clock_timestamp())) * 1000)::float8 AS remaining
       FROM sequencer_lease WHERE id = 1`);
    const row = r.rows[0];
    if (row === undefined) fail('internal', 'the sequencer_lease row is missing (run the schema)');
    return { holder: row.holder, epoch: Number(row.epoch), remainingMs: row.remaining === null ? -Infinity : row.remaining };
  }
}

export interface PendingRow {
  /** The queue position (BIGSERIAL as a decimal string). */
  id: string;
  fileHash: Hash;
  /** What the front end queued: the verified submission's JSON (core/entry.ts formatSubmission). */
  submission: string;
}

export class PendingQueue {
  private readonly db: Queryable;

  constructor(db: Queryable) {
    this.db = db;
  }

  /**
   * Queues a verified submission and wakes the sequencer. False when a submission for the same file is already
   * queued (the caller then waits for that file's entry like any other: identical → the same entry, different → 409).
   */
  async enqueue(fileHash: Hash, submission: string): Promise<boolean> {
    const r = await this.db.query<{ n: string }>(
      `WITH ins AS (INSERT INTO pending (file_hash, submission) VALUES ($1, $2) ON CONFLICT (file_hash) DO NOTHING RETURNING id)
       SELECT (SELECT count(*) FROM ins) AS n, pg_notify('${PENDING_CHANNEL}', '')`, [fileHash, submission]);
    return Number(r.rows[0]!.n) === 1;
  }

  /** The oldest queued submissions, at most `limit`. */
  async oldest(limit: number): Promise<PendingRow[]> {
    const r = await this.db.query<{ id: string; file_hash: Buffer; submission: string }>(
      'SELECT id, file_hash, submission FROM pending ORDER BY id LIMIT $1', [limit]);
    return r.rows.map((row) => ({ id: row.id, fileHash: row.file_hash, submission: row.submission }));
  }

  /** How many are queued, counted up to `max` (a bounded scan: enough to refuse when the queue is full). */
  async size(max: number): Promise<number> {
    const r = await this.db.query<{ n: string }>('SELECT count(*) AS n FROM (SELECT 1 FROM pending LIMIT $1) q', [max]);
    return Number(r.rows[0]!.n);
  }

  /**
   * In the commit transaction (client `tx`): removes the integrated rows and notifies the front ends that `treeSize`
   * is committed (PostgreSQL delivers the notification at COMMIT, never for a rolled-back transaction).
   */
  async settle(tx: Queryable, ids: string[], treeSize: number): Promise<void> {
    if (ids.length > 0) await tx.query('DELETE FROM pending WHERE id = ANY($1::bigint[])', [ids]);
    await tx.query(`SELECT pg_notify('${COMMITTED_CHANNEL}', $1)`, [String(treeSize)]);
  }

  /** Removes rows settled without a commit (every one of them was already logged), and wakes the waiting front ends. */
  async remove(ids: string[]): Promise<void> {
    await this.db.query(`WITH d AS (DELETE FROM pending WHERE id = ANY($1::bigint[])) SELECT pg_notify('${COMMITTED_CHANNEL}', '')`, [ids]);
  }
}

/** Runs `fn` in a transaction on one client of the pool (COMMIT, or ROLLBACK and rethrow). */
export async function inTransaction<T>(pool: pg.Pool, fn: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

/**
 * One dedicated connection LISTENing on some channels: calls `onNotify(channel, payload)` per notification. When the
 * connection drops it reconnects every second (callers poll as well, so a lost notification only delays them).
 */
export class Listener {
  private client: pg.Client | undefined;
  private closed = false;
  private readonly connect: () => pg.Client;
  private readonly channels: string[];
  private readonly onNotify: (channel: string, payload: string) => void;
  private readonly log: (msg: string) => void;

  private constructor(connect: () => pg.Client, channels: string[], onNotify: (channel: string, payload: string) => void, log: (msg: string) => void) {
    this.connect = connect;
    this.channels = channels;
    this.onNotify = onNotify;
    this.log = log;
  }

  static async start(connect: () => pg.Client, channels: string[], onNotify: (channel: string, payload: string) => void,
    log: (msg: string) => void = () => {}): Promise<Listener> {
    const l = new Listener(connect, channels, onNotify, log);
    await l.open();
    return l;
  }

  private async open(): Promise<void> {
    const c = this.connect();
    let failed = false;
    const retry = (e: Error) => {
      if (this.closed || failed) return;
      failed = true;
      this.log(`LISTEN: ${e.message}; reconnecting in 1 s (polling meanwhile)`);
      if (this.client === c) this.client = undefined;
      c.end().catch(() => {});
      setTimeout(() => {
        if (!this.closed) this.open().catch(() => {});
      }, 1000).unref();
    };
    c.on('notification', (n) => {
      if (this.channels.includes(n.channel)) this.onNotify(n.channel, n.payload ?? '');
    });
    c.on('error', retry);
    try {
      await c.connect();
      for (const ch of this.channels) await c.query(`LISTEN ${ch}`);
    } catch (e) {
      retry(e as Error);
      throw e;
    }
    if (this.closed) await c.end();
    else this.client = c;
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}

/**
 * What a front end needs of the coordination: the lease, the queue, and notifications (one LISTEN connection per
 * process, on both channels). `committed` fires for every commit by any front end, `queued` for every enqueue.
 */
export class Coordination {
  readonly queue: PendingQueue;
  private readonly pool: pg.Pool;
  private readonly listener: Listener;
  private committedFns: Array<(treeSize: number | undefined) => void> = [];
  private queuedFns: Array<() => void> = [];
  private ownsPool = false;

  private constructor(pool: pg.Pool, listener: Listener) {
    this.pool = pool;
    this.queue = new PendingQueue(pool);
    this.listener = listener;
  }

  /** Creates the tables if needed and starts listening (a dedicated client made by `listenClient`). */
  static async open(pool: pg.Pool, listenClient: () => pg.Client, log: (msg: string) => void = () => {}): Promise<Coordination> {
    await ensureSequencingSchema(pool);
    let self: Coordination | undefined;
    const listener = await Listener.start(listenClient, [COMMITTED_CHANNEL, PENDING_CHANNEL], (channel, payload) => {
      if (self === undefined) return;
      if (channel === COMMITTED_CHANNEL) {
        const n = /^(0|[1-9][0-9]{0,15})$/.test(payload) ? Number(payload) : undefined;
        for (const f of self.committedFns) f(n);
      } else {
        for (const f of self.queuedFns) f();
      }
    }, log);
    self = new Coordination(pool, listener);
    return self;
  }

  /**
   * Connects to the database at `url` with a small pool of its own (the queue's statements; the fence runs on the
   * store's commit transaction) and one LISTEN connection.
   */
  static async connect(url: string, log: (msg: string) => void = () => {}): Promise<Coordination> {
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', (e) => log(`PostgreSQL (pending queue): ${e.message}`));
    try {
      const c = await Coordination.open(pool, () => new pg.Client({ connectionString: url }), log);
      c.ownsPool = true;
      return c;
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
  }

  lease(holder: string, ttlMs: number): SequencerLease {
    return new SequencerLease(this.pool, { holder, ttlMs });
  }

  onCommitted(f: (treeSize: number | undefined) => void): void {
    this.committedFns.push(f);
  }

  onQueued(f: () => void): void {
    this.queuedFns.push(f);
  }

  async close(): Promise<void> {
    await this.listener.close();
    if (this.ownsPool) await this.pool.end().catch(() => {});
  }
}

export interface LeaseKeeperOptions {
  lease: SequencerLease;
  /** How often to try to take the lease, or renew it (default: a quarter of the TTL). */
  intervalMs?: number;
  /**
   * Called when this front end took the lease (the start-up safety checks belong here); sequencing begins when it
   * settles. If it throws, the lease is released and not tried again for 10 intervals.
   */
  onAcquired: (epoch: number) => Promise<void>;
  /** Called when a lease this front end held is lost or given up (sequencing has already stopped). */
  onLost?: (epoch: number, why: string) => void;
  log?: (msg: string) => void;
}

/**
 * Takes and keeps the sequencer lease. `epoch` is defined only while this front end may sequence: it holds the lease,
 * its start-up checks passed, and the lease's TTL, counted on the local monotonic clock from the moment the last
 * successful renewal was SENT, has not run out (so it stops before the database could hand the lease to another).
 * Only the fence (SequencerLease.fence in every commit) makes this safe; this just avoids doomed work.
 */
export class LeaseKeeper {
  private readonly o: LeaseKeeperOptions;
  private readonly intervalMs: number;
  private held: number | undefined;
  private ready = false;
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private backoffUntil = 0;
  private waiters: Array<() => void> = [];

  constructor(o: LeaseKeeperOptions) {
    this.o = o;
    this.intervalMs = o.intervalMs ?? Math.max(25, Math.floor(o.lease.ttlMs / 4));
  }

  /** The epoch this front end sequences under, or undefined when it must not sequence now. */
  get epoch(): number | undefined {
    return this.ready && this.held !== undefined && performance.now() < this.validUntil ? this.held : undefined;
  }

  /** Resolves at the next change of leadership (acquired and ready, or lost), or after `ms`. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    const run = () => {
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        if (!this.stopped) this.timer = setTimeout(run, this.intervalMs);
      });
    };
    run();
  }

  /** Stops taking and renewing the lease, and releases it if held (another front end takes over at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.ticking;
    const epoch = this.held;
    if (epoch !== undefined) {
      this.lose(epoch, 'shutting down');
      await this.o.lease.release(epoch).catch((e: Error) => this.o.log?.(`could not release the sequencer lease: ${e.message}`));
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private lose(epoch: number, why: string): void {
    if (this.held !== epoch) return;
    this.held = undefined;
    this.ready = false;
    this.o.log?.(`lost the sequencer lease (epoch ${epoch}): ${why}`);
    this.o.onLost?.(epoch, why);
    this.wake();
  }

  private async tick(): Promise<void> {
    const sentAt = performance.now();
    const epoch = this.held;
    try {
      if (epoch === undefined) {
        if (sentAt < this.backoffUntil) return;
        const got = await this.o.lease.tryAcquire();
        if (got === undefined || this.stopped) {
          if (got !== undefined) await this.o.lease.release(got);
          return;
        }
        this.held = got;
        this.validUntil = sentAt + this.o.lease.ttlMs;
        this.o.log?.(`took the sequencer lease (epoch ${got}); running the start-up checks before signing`);
        this.o.onAcquired(got).then(() => {
          if (this.held !== got) return;
          this.ready = true;
          this.o.log?.(`sequencing (epoch ${got})`);
          this.wake();
        }, (e: Error) => {
          this.lose(got, `the start-up checks refused to sign: ${e.message}`);
          this.backoffUntil = performance.now() + 10 * this.intervalMs;
          this.o.lease.release(got).catch(() => {});
        });
      } else if (await this.o.lease.renew(epoch)) {
        this.validUntil = sentAt + this.o.lease.ttlMs;
      } else {
        this.lose(epoch, 'another front end holds it now, or it expired before it was renewed');
      }
    } catch (e) {
      this.o.log?.(`sequencer lease: ${(e as Error).message}`);
      if (epoch !== undefined && performance.now() >= this.validUntil) this.lose(epoch, 'it could not be renewed in time');
    }
  }
}
