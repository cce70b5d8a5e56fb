/**
 * bench/index-server.ts `benchIndexServer()`: the package index on the server (pkglog serve --index).
 * - ingest overhead: POST /v1/entries/batch (1,000 per request, C=2) into a log WITH the index and one WITHOUT, in
 *   alternating rounds of the same run (both in bench server children, same verify threads); a round of the indexed
 *   log only ends when its index covers everything committed (catch-up time included), so the figure is the rate at
 *   which entries are logged AND indexed. Target: ≥ 70% of the rate without the index.
 * - a large log (bench/build-log.ts: one publisher key for every entry, 256 files per package) indexed from scratch
 *   when started with --index: build time, the index's size on disk (its tables, SQLite dbstat), lookup p50/p99 of
 *   GET /v1/index/<pkg> at C=8 for random packages, and the bundle bytes for packages with 1 and 100 files (submitted
 *   over HTTP once the index is built) and for the publisher key of every entry (page 0 of its 1,000,000-entry list).
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { formatSubmission, type Submission } from '../core/entry.ts';
import { encodeBase64 } from '../core/encoding.ts';
import { parseIndexRevision } from '../core/index-revision.ts';
import { addRegistry } from '../server/registries.ts';
import { registriesFile } from '../server/main.ts';
import { artifact, REGISTRY, REGISTRY_NAME, sign } from '../test/support/submissions.ts';
import { buildLog } from './build-log.ts';
import { closedLoop, httpRequest, percentile } from './load.ts';
import { makeSubmissions, startChild, VERIFY_THREADS, type Figure } from './log.ts';

const say = (m: string) => process.stderr.write(`bench index-server: ${m}\n`);

/** The input size the index's served revision covers (from an absence bundle). */
async function indexedSize(url: string): Promise<number> {
  const r = await fetch(`${url}/v1/index/pypi/bench-index-absent`);
  if (r.status !== 200) return -1;
  const b = (await r.json()) as { revision: { leaf: string } };
  return parseIndexRevision(Buffer.from(b.revision.leaf, 'base64')).inputTreeSize;
}

async function treeSize(url: string): Promise<number> {
  const text = await (await fetch(`${url}/checkpoint`)).text();
  return Number(text.split('\n')[1]);
}

async function untilIndexed(url: string, size: number, limitMs = 600_000): Promise<void> {
  const t0 = performance.now();
  while ((await indexedSize(url)) < size) {
    if (performance.now() - t0 > limitMs) throw new Error(`the index did not reach size ${size} in ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function post(url: string, subs: Submission[]): Promise<void> {
  for (let i = 0; i < subs.length; i += 1000) {
    const r = await fetch(`${url}/v1/entries/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ entries: subs.slice(i, i + 1000).map(formatSubmission) }) });
    if (r.status !== 200) throw new Error(`batch POST: ${r.status} ${await r.text()}`);
  }
}

/** Bytes in use in a database file (SQLite dbstat: every table and index), and per table. */
function dbBytes(dbFile: string): { total: number; tables: Record<string, number> } {
  if (!existsSync(dbFile)) return { total: 0, tables: {} };
  const db = new Database(dbFile, { readonly: true });
  try {
    const rows = db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name').all() as Array<{ name: string; bytes: number }>;
    return { total: rows.reduce((a, r) => a + r.bytes, 0), tables: Object.fromEntries(rows.map((r) => [r.name, r.bytes])) };
  } finally {
    db.close();
  }
}

export async function benchIndexServer(o: { quick?: boolean; part?: 'ingest' | 'large' } = {}): Promise<Figure[]> {
  const quick = o.quick === true;
  // BENCH_INDEX_PART=ingest|large runs one part alone.
  const part = o.part ?? (process.env.BENCH_INDEX_PART as 'ingest' | 'large' | undefined);
  const figs: Figure[] = [];
  const root = mkdtempSync(join(tmpdir(), 'pkglog-bench-index-'));
  try {
    // 1. Ingest with and without the index, alternating rounds.
    if (part !== 'large') {
      const R = quick ? 1 : 3;
      const PER_ROUND = quick ? 10_000 : 30_000;
      const runId = Date.now().toString(36);
      say(`signing ${2 * R * PER_ROUND} submissions …`);
      const subs = makeSubmissions(runId, 0, 2 * R * PER_ROUND);
      const bodies = (from: number) => Array.from({ length: PER_ROUND / 1000 }, (_, b) =>
        httpRequest('POST', '/v1/entries/batch', JSON.stringify({ entries: subs.slice(from + b * 1000, from + (b + 1) * 1000).map(formatSubmission) })));
      const dirs = { plain: join(root, 'plain'), index: join(root, 'indexed') };
      for (const d of Object.values(dirs)) addRegistry(registriesFile(d), REGISTRY_NAME, encodeBase64(REGISTRY.publicKey), { ecosystems: ['pypi', 'npm'] });
      const plain = await startChild({ cmd: 'start', mode: 'log', dataDir: dirs.plain, verifyThreads: VERIFY_THREADS });
      const indexed = await startChild({ cmd: 'start', mode: 'log', dataDir: dirs.index, verifyThreads: VERIFY_THREADS, index: true });
      const rates = { plain: 0, index: 0 };
      const perRound: string[] = [];
      let lagMs = 0;
      try {
        await untilIndexed(indexed.url, 0);
        let at = 0;
        for (let r = 0; r < R; r++) {
          const run = async (url: string, withIndex: boolean): Promise<number> => {
            const reqs = bodies(at);
            at += PER_ROUND;
            const before = await treeSize(url);
            const t0 = performance.now();
            const l = await closedLoop({ url, concurrency: 2, durationMs: 1e9, request: (i) => reqs[i] });
            if (l.errors > 0) throw new Error(`batch POST: ${l.errors} failed: ${l.failures.join(' | ')}`);
            const tLoad = performance.now();
            const size = await treeSize(url);
            if (size - before !== PER_ROUND) throw new Error(`logged ${size - before} of ${PER_ROUND}`);
            if (withIndex) {
              await untilIndexed(url, size);
              lagMs = Math.max(lagMs, performance.now() - tLoad);
            }
            return PER_ROUND / ((performance.now() - t0) / 1000);
          };
          const a = await run(plain.url, false);
          const b = await run(indexed.url, true);
          rates.plain += a / R;
          rates.index += b / R;
          perRound.push(`${((100 * b) / a).toFixed(0)}%`);
        }
      } finally {
        await plain.stop();
        await indexed.stop();
      }
      figs.push({
        name: `batch ingest with --index (1,000/req, C=2, ${PER_ROUND.toLocaleString('en')} per round, until indexed)`, value: rates.index, unit: 'entries/s',
        baseline: rates.plain, ratio: rates.index / rates.plain, target: '≥ 70% of the same ingest without the index', pass: rates.index / rates.plain >= 0.7,
        note: `baseline: the same batches into a log without --index, alternating rounds (per round ${perRound.join(' ')}); verify threads ${VERIFY_THREADS}; the index caught up at most ${lagMs.toFixed(0)} ms after a round's last reply`,
      });
    }
    if (part === 'ingest') return figs;
    // 2. A large log indexed from scratch, then lookups and bundle sizes.
    const N = quick ? 100_000 : 1_000_000;
    const big = join(root, 'big');
    say(`building a ${N.toLocaleString('en')}-entry log …`);
    buildLog(big, N, 5000); // a checkpoint every 5,000 entries: revisions of 5,000
    addRegistry(registriesFile(big), REGISTRY_NAME, encodeBase64(REGISTRY.publicKey), { ecosystems: ['pypi', 'npm'] });
    const before = dbBytes(join(big, 'log.sqlite'));
    say('starting it with --index (builds the index from scratch in the background) …');
    const t0 = performance.now();
    const log = await startChild({ cmd: 'start', mode: 'log', dataDir: big, verifyThreads: VERIFY_THREADS, index: true });
    try {
      await untilIndexed(log.url, N, 3_600_000);
      const buildMs = performance.now() - t0 - log.startupMs;
      figs.push({
        name: `index build from scratch (${N.toLocaleString('en')}-entry log)`, value: N / (buildMs / 1000), unit: 'entries/s',
        note: `${(buildMs / 1000).toFixed(1)} s in revisions of ≤ 5,000 entries, in the background after the log listened (5 keys per entry; one publisher key for all entries, 256 files per package)`,
      });
      // Packages with 1 and 100 files, over HTTP; then the sizes.
      const one = [sign(artifact(0, { name: 'bench-single', filename: 'bench-single-1.0.0.tar.gz' }))];
      const hundred = Array.from({ length: 100 }, (_, i) => sign(artifact(i, { name: 'bench-hundred', filename: `bench-hundred-1.0.${i}.tar.gz` })));
      await post(log.url, [...one, ...hundred]);
      await untilIndexed(log.url, N + 101);
      const after = dbBytes(join(big, 'index.sqlite'));
      const file = statSync(join(big, 'index.sqlite')).size;
      const mib = (b: number | undefined) => `${((b ?? 0) / 2 ** 20).toFixed(0)} MiB`;
      figs.push({
        name: `index size on disk (${N.toLocaleString('en')} entries)`, value: after.total / 2 ** 20, unit: 'MiB', baseline: before.total / 2 ** 20, ratio: after.total / before.total,
        note: `baseline: the log's own database (${(before.total / N).toFixed(0)} bytes/entry); index.sqlite ${(after.total / N).toFixed(0)} bytes/entry in use (file ${mib(file)}): map nodes ${mib(after.tables.index_map_nodes)} (the live map, the 64 kept revisions' paths, replaced nodes not yet swept), dead-id lists ${mib(after.tables.index_dead)}, full pages ${mib(after.tables.index_pages)}, output log ${mib((after.tables.index_tiles ?? 0) + (after.tables.index_revisions ?? 0) + (after.tables.index_checkpoints ?? 0))}`,
      });
      const bytes = async (path: string) => Buffer.byteLength(await (await fetch(`${log.url}${path}`)).text());
      const b1 = await bytes('/v1/index/pypi/bench-single');
      const b100 = await bytes('/v1/index/pypi/bench-hundred');
      const bPub = await bytes(`/v1/index/publisher/${Buffer.alloc(32, 0x11).toString('base64url')}`);
      const bAbsent = await bytes('/v1/index/pypi/bench-index-absent');
      figs.push({ name: 'bundle bytes over HTTP, package with 1 file', value: b1, unit: 'bytes', note: `absence ${bAbsent} bytes` });
      figs.push({ name: 'bundle bytes over HTTP, package with 100 files (page 1 of 2: 64 entries)', value: b100, unit: 'bytes', target: '≤ 512 KiB', pass: b100 <= 512 * 1024, note: `the publisher key of all ${N.toLocaleString('en')} entries, page 0 of ${Math.ceil(N / 64).toLocaleString('en')}: ${bPub} bytes` });
      // Lookups: random bulk packages (256 files each: page 0 = 64 entries) and the 1-file package.
      let seed = 7;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
      const pkgs = Math.floor(N / 256);
      const reqs = Array.from({ length: 2048 }, () => httpRequest('GET', `/v1/index/pypi/bulk-${Math.floor(rnd() * pkgs)}`));
      const single = httpRequest('GET', '/v1/index/pypi/bench-single');
      const D = quick ? 2000 : 5000;
      const l64 = await closedLoop({ url: log.url, concurrency: 8, durationMs: D, warmup: 64, request: (i) => reqs[i % reqs.length] });
      const l1 = await closedLoop({ url: log.url, concurrency: 8, durationMs: D, request: () => single });
      if (l64.errors + l1.errors > 0) throw new Error(`lookups failed: ${[...l64.failures, ...l1.failures].join(' | ')}`);
      const proofGet = httpRequest('GET', `/v1/proof/inclusion?index=${Math.floor(N / 2)}&size=${N}`);
      const base = await closedLoop({ url: log.url, concurrency: 8, durationMs: D, request: () => proofGet });
      figs.push({
        name: `GET /v1/index/<pkg> p50, package with 256 files (page of 64), C=8`, value: percentile(l64.latencies, 50), unit: 'ms',
        note: `p99 ${percentile(l64.latencies, 99).toFixed(1)} ms, ${Math.round(l64.rate)} bundles/s; 1-file package p50 ${percentile(l1.latencies, 50).toFixed(1)} ms, p99 ${percentile(l1.latencies, 99).toFixed(1)} ms, ${Math.round(l1.rate)}/s; for scale: GET /v1/proof/inclusion at C=8 ${Math.round(base.rate)}/s, p50 ${percentile(base.latencies, 50).toFixed(1)} ms`,
      });
    } finally {
      await log.stop();
    }
    return figs;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
