/**
 * The store's ingest, SQLite next to PostgreSQL in the same run (benchStore(), printed by bench/run.ts):
 *  - batch ingest: the sequencer integrating batches of 1000 already verified submissions (duplicate lookup, right-edge
 *    tiles, integration, signing, ONE transaction per batch), entries/s;
 *  - single-entry ingest: one submission at a time, each its own batch and commit (latency-bound), entries/s.
 * Signature verification is left out on purpose (it is the same work on both backends and would hide the store).
 * SQLite: WAL, synchronous=FULL on the local disk. PostgreSQL: the test server (test/support/postgres.ts: 127.0.0.1:5432
 * or PKGLOG_TEST_DATABASE_URL), a fresh database, fsync and synchronous_commit as that server has them.
 * Rounds alternate between the backends so a noisy neighbour hits both alike; each figure sums its rounds.
 */
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { EMPTY_ROOT } from '../core/hash.ts';
import { ed25519Signer } from '../core/note.ts';
import type { Submission } from '../core/entry.ts';
import { SqliteStore } from '../log-store/store.ts';
import { PostgresStore } from '../log-store/postgres.ts';
import type { Store } from '../log-store/types.ts';
import { Sequencer, signCheckpoint } from '../server/sequencer.ts';
import { artifact, seedOf, sign } from '../test/support/submissions.ts';
import { createTestDatabase, postgresServer } from '../test/support/postgres.ts';
import type { Figure } from './log.ts';

const ORIGIN = 'bench.example/store';

interface Backend {
  name: string;
  store: Store;
  sequencer: Sequencer;
  close(): Promise<void>;
}

async function open(name: 'SQLite' | 'PostgreSQL'): Promise<Backend> {
  const signer = ed25519Signer(ORIGIN, seedOf('bench store'));
  let store: Store;
  let cleanup: () => Promise<void>;
  if (name === 'SQLite') {
    const dir = mkdtempSync(join(tmpdir(), 'pkglog-bench-store-'));
    store = SqliteStore.open(join(dir, 'log.sqlite'));
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  } else {
    const db = await createTestDatabase();
    store = await PostgresStore.open(db.url);
    cleanup = () => db.drop();
  }
  await store.initialize({ treeSize: 0, rootHash: EMPTY_ROOT, checkpoint: signCheckpoint(signer, ORIGIN, 0, EMPTY_ROOT) }, Date.now());
  const sequencer = new Sequencer({ store, signer, origin: ORIGIN, now: Date.now, batchIntervalMs: 0, maxBatch: 1000, maxPending: 1_000_000 });
  return {
    name, store, sequencer,
    async close() {
      await sequencer.close();
      await store.close();
      await cleanup();
    },
  };
}

async function batches(b: Backend, subs: Submission[], size: number): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < subs.length; i += size) await Promise.all(subs.slice(i, i + size).map((s) => b.sequencer.submit(s)));
  return performance.now() - t;
}

async function singles(b: Backend, subs: Submission[]): Promise<number> {
  const t = performance.now();
  for (const s of subs) await b.sequencer.submit(s);
  return performance.now() - t;
}

export async function benchStore(o: { quick?: boolean; log?: (m: string) => void } = {}): Promise<Figure[]> {
  const say = o.log ?? ((m: string) => console.error(m));
  const quick = o.quick ?? false;
  const ROUNDS = quick ? 2 : 3;
  const BATCHES = quick ? 3 : 10; // of 1000, per round and backend
  const SINGLES = quick ? 50 : 200;
  const server = await postgresServer();
  const settings = await (async () => {
    const c = new pg.Client({ connectionString: server.adminUrl });
    await c.connect();
    try {
      const r = await c.query<{ f: string; s: string; v: string }>("SELECT current_setting('fsync') AS f, current_setting('synchronous_commit') AS s, current_setting('server_version') AS v");
      return r.rows[0]!;
    } finally {
      await c.end();
    }
  })();
  say(`store ingest: SQLite vs PostgreSQL ${settings.v} (${server.source}; fsync=${settings.f}, synchronous_commit=${settings.s}), ${ROUNDS} rounds …`);
  const perRound = BATCHES * 1000 + SINGLES;
  let next = 0;
  const take = (n: number) => {
    const out = Array.from({ length: n }, (_, i) => sign(artifact(next + i, { name: 'bench-store' })));
    next += n;
    return out;
  };
  const backends = [await open('SQLite'), await open('PostgreSQL')];
  const batchMs = new Map<string, number>(backends.map((b) => [b.name, 0]));
  const singleMs = new Map<string, number>(backends.map((b) => [b.name, 0]));
  try {
    const warm = take(1000);
    for (const b of backends) await batches(b, warm, 1000);
    for (let r = 0; r < ROUNDS; r++) {
      const subs = take(perRound);
      for (const b of r % 2 === 0 ? backends : [...backends].reverse()) {
        batchMs.set(b.name, batchMs.get(b.name)! + await batches(b, subs.slice(0, BATCHES * 1000), 1000));
        singleMs.set(b.name, singleMs.get(b.name)! + await singles(b, subs.slice(BATCHES * 1000)));
      }
    }
    for (const b of backends) {
      const size = (await b.store.treeState())!.treeSize;
      if (size !== 1000 + ROUNDS * perRound) throw new Error(`${b.name}: tree size ${size}, expected ${1000 + ROUNDS * perRound}`);
    }
  } finally {
    for (const b of backends) await b.close();
  }
  const rate = (n: number, ms: number) => (n * 1000) / ms;
  const sqliteBatch = rate(ROUNDS * BATCHES * 1000, batchMs.get('SQLite')!);
  const pgBatch = rate(ROUNDS * BATCHES * 1000, batchMs.get('PostgreSQL')!);
  const sqliteSingle = rate(ROUNDS * SINGLES, singleMs.get('SQLite')!);
  const pgSingle = rate(ROUNDS * SINGLES, singleMs.get('PostgreSQL')!);
  const where = `PostgreSQL ${settings.v} via ${server.source}, fsync=${settings.f}, synchronous_commit=${settings.s}; sequencer, verified submissions`;
  return [
    { name: 'store batch ingest, SQLite (1000/batch, one transaction each)', value: sqliteBatch, unit: 'entries/s', note: 'the baseline of the PostgreSQL figure' },
    {
      name: 'store batch ingest, PostgreSQL (1000/batch)', value: pgBatch, unit: 'entries/s', baseline: sqliteBatch, ratio: pgBatch / sqliteBatch,
      target: '≥ 50% of SQLite', pass: pgBatch / sqliteBatch >= 0.5, note: where,
    },
    { name: 'store single-entry ingest, SQLite (a commit per entry)', value: sqliteSingle, unit: 'entries/s' },
    { name: 'store single-entry ingest, PostgreSQL (a commit per entry)', value: pgSingle, unit: 'entries/s', baseline: sqliteSingle, ratio: pgSingle / sqliteSingle, note: where },
  ];
}

// Run on its own: npx tsx bench/store.ts
if (process.argv[1]?.endsWith('bench/store.ts')) {
  const figs = await benchStore({ quick: process.env.BENCH_QUICK === '1' });
  for (const f of figs) console.log(`${f.name}: ${f.value.toFixed(0)} ${f.unit}${f.ratio !== undefined ? ` (${(f.ratio * 100).toFixed(0)}% of SQLite)` : ''}`);
  process.exit(0);
}
