/**
 * bench/large.ts `benchLarge()`: a big SQLite log next to a 1,000-entry one, measured the same way in the same run
 * (issue 9, "A 10,000,000-entry log on SQLite"):
 *  - bytes on disk per entry (log.sqlite + its WAL), next to the bytes of the data itself (leaf + leaf hash);
 *  - start-up (startLog until listening, in the server child) and RSS after the load;
 *  - sequential (C=1) latency p50/p99 of inclusion proofs at random indexes, of random full hash tiles
 *    (`/tile/0/…`) and of random full entry bundles (`/tile/entries/…`): target ≤ 2× the 1,000-entry log;
 *  - sustained submissions: batch POST /v1/entries/batch (1,000 really signed entries per request, 2 in flight) on
 *    each log, K batches per round timed from the first request to the last reply: entries/s and request p50/p99;
 *    target ≥ 50% of the 1,000-entry log's rate.
 * The two logs run in two server children at once and are measured in alternating rounds, so a noisy neighbour hits
 * both alike. The big log's file is read once first, so that both logs' files sit in the OS page cache as a serving
 * log's does (BENCH_LARGE_COLD=1 skips that: then a random bundle's ~26 pages come partly from the disk).
 *
 * Size: BENCH_FULL=1 → 10,000,000 entries; otherwise 1,000,000 (BENCH_QUICK: 100,000); BENCH_LARGE_ENTRIES=N
 * overrides. The big log is bulk-built once (bench/build-log.ts: integrate + LogStore.append in 100k batches, fixed
 * keys and signatures) and cached (bench/large-cache.ts); every run appends its submissions to it, so its size is
 * "at least N" — the figures name the size measured.
 * `npx tsx bench/large.ts` runs this section alone (the server child runs the TypeScript sources through tsx, as in
 * the rest of bench/).
 */
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { formatSubmission } from '../core/entry.ts';
import { formatTilePath } from '../core/tiles.ts';
import { encodeBase64 } from '../core/encoding.ts';
import { addRegistry, loadRegistries } from '../server/registries.ts';
import { registriesFile } from '../server/main.ts';
import { REGISTRY, REGISTRY_NAME } from '../test/support/submissions.ts';
import { mulberry32 } from '../test/support/prng.ts';
import { closedLoop, httpRequest, percentile, type LoadResult } from './load.ts';
import { buildLog } from './build-log.ts';
import { cachedLog } from './large-cache.ts';
import { makeSubmissions, startChild, VERIFY_THREADS, type Figure } from './log.ts';

const SMALL = 1000;

function diskBytes(dir: string): number {
  let n = 0;
  for (const f of ['log.sqlite', 'log.sqlite-wal']) {
    const p = join(dir, f);
    if (existsSync(p)) n += statSync(p).size;
  }
  return n;
}

/** Mean leaf length plus the 32-byte leaf hash: the bytes an entry holds before any index or tile. */
function dataBytesPerEntry(dir: string): number {
  const db = new Database(join(dir, 'log.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const r = db.prepare<[], { n: number }>('SELECT avg(length(leaf)) + 32 AS n FROM (SELECT leaf FROM entries LIMIT 10000)').get();
    return r!.n;
  } finally {
    db.close();
  }
}

function ensureRegistry(dir: string): void {
  if (!loadRegistries(registriesFile(dir)).has(REGISTRY_NAME)) {
    addRegistry(registriesFile(dir), REGISTRY_NAME, encodeBase64(REGISTRY.publicKey), { ecosystems: ['pypi', 'npm'] });
  }
}

const p = (a: number[], q: number) => percentile(Float64Array.from(a), q);

/**
 * Reads the database file once, sequentially, so it sits in the OS page cache as the file of a log that has been
 * serving for a while does (the 1,000-entry log's always does). Returns the seconds it took.
 */
function warmPageCache(dir: string): number {
  const t0 = performance.now();
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const f of ['log.sqlite', 'log.sqlite-wal']) {
    if (!existsSync(join(dir, f))) continue;
    const fd = openSync(join(dir, f), 'r');
    try {
      while (readSync(fd, buf, 0, buf.length, null) > 0);
    } finally {
      closeSync(fd);
    }
  }
  return (performance.now() - t0) / 1000;
}

export async function benchLarge({ quick = false }: { quick?: boolean } = {}): Promise<Figure[]> {
  const say = (m: string) => console.error(`bench large: ${m}`);
  const full = process.env.BENCH_FULL === '1';
  const N = Number(process.env.BENCH_LARGE_ENTRIES ?? (full ? 10_000_000 : quick ? 100_000 : 1_000_000));
  if (!Number.isInteger(N) || N < 10_000) throw new Error(`BENCH_LARGE_ENTRIES must be an integer ≥ 10000, got ${process.env.BENCH_LARGE_ENTRIES}`);
  const R = quick ? 1 : 2; // alternating rounds
  const W = quick ? 3000 : 9000; // ms per read round (a third for each kind)
  const BATCH = 1000;
  const root = mkdtempSync(join(tmpdir(), 'pkglog-bench-large-'));
  const figs: Figure[] = [];
  try {
    const big = cachedLog(N, say);
    if (big.built) figs.push({ name: `bulk build of the ${N.toLocaleString('en')}-entry log (once; cached)`, value: big.buildS, unit: 's', note: big.dir });
    const smallDir = join(root, 'small');
    buildLog(smallDir, SMALL);
    for (const d of [big.dir, smallDir]) ensureRegistry(d);
    const dataPerEntry = dataBytesPerEntry(smallDir);
    const disk = { large: diskBytes(big.dir), small: diskBytes(smallDir) };

    const runId = Date.now().toString(36);
    // Submissions for both logs (distinct logs: the same submissions are new to each; runId keeps them new to the
    // cached big log across runs). Signing costs as much as verifying, so a round is a fixed number of batches
    // (K, BENCH_LARGE_BATCHES), timed from the first request to the last reply, after one warm-up batch.
    const K = Number(process.env.BENCH_LARGE_BATCHES ?? (quick ? 3 : 8));
    const perLog = (R * K + 1) * BATCH;
    const t0 = performance.now();
    const subs = makeSubmissions(runId, 0, perLog);
    say(`signed ${perLog} submissions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const batches: Buffer[] = [];
    for (let b = 0; b * BATCH < subs.length; b++) {
      batches.push(httpRequest('POST', '/v1/entries/batch', JSON.stringify({ entries: subs.slice(b * BATCH, (b + 1) * BATCH).map(formatSubmission) })));
    }

    // BENCH_LARGE_COLD=1: measure without reading the big file first (whatever of it the OS page cache holds).
    const cold = process.env.BENCH_LARGE_COLD === '1';
    const warmS = cold ? undefined : warmPageCache(big.dir);
    if (warmS !== undefined) say(`read ${(disk.large / 2 ** 30).toFixed(2)} GiB once into the page cache in ${warmS.toFixed(1)} s`);
    say(`starting the ${N.toLocaleString('en')}-entry log and the ${SMALL}-entry log …`);
    const small = await startChild({ cmd: 'start', mode: 'log', dataDir: smallDir, verifyThreads: VERIFY_THREADS });
    const large = await startChild({ cmd: 'start', mode: 'log', dataDir: big.dir, verifyThreads: VERIFY_THREADS });
    const logs = { small, large };
    try {
      const size = { small: small.treeSize!, large: large.treeSize! };
      if (size.small !== SMALL || size.large < N) throw new Error(`tree sizes ${size.small} and ${size.large}, expected ${SMALL} and ≥ ${N}`);
      const reqs = (n: number, seed: number) => {
        const r = mulberry32(seed);
        const t = Math.floor(n / 256);
        return {
          proof: Array.from({ length: 8192 }, () => httpRequest('GET', `/v1/proof/inclusion?index=${Math.floor(r() * n)}&size=${n}`)),
          tile: Array.from({ length: 8192 }, () => httpRequest('GET', '/' + formatTilePath({ level: 0, index: Math.floor(r() * t), width: 256 }))),
          bundle: Array.from({ length: 8192 }, () => httpRequest('GET', '/' + formatTilePath({ level: -1, index: Math.floor(r() * t), width: 256 }))),
        };
      };
      const rq = { small: reqs(size.small, 1), large: reqs(size.large, 2) };
      type K = 'proof' | 'tile' | 'bundle';
      const lat: Record<'small' | 'large', Record<K, number[]>> = {
        small: { proof: [], tile: [], bundle: [] }, large: { proof: [], tile: [], bundle: [] },
      };
      say(`reads: sequential proofs, tiles and bundles at random indexes (${R} rounds) …`);
      for (let round = 0; round < R; round++) {
        for (const k of ['proof', 'tile', 'bundle'] as K[]) {
          for (const which of ['small', 'large'] as const) {
            const list = rq[which][k];
            const r = await closedLoop({ url: logs[which].url, concurrency: 1, durationMs: W / 3, warmup: round === 0 ? 20 : 0, request: (i) => list[(i + round * 2048) % list.length] });
            if (r.errors > 0) throw new Error(`${which} ${k}: ${r.errors} errors, e.g. ${r.failures.join(' | ')}`);
            lat[which][k].push(...r.latencies);
          }
        }
      }
      const rssReads = { small: await small.rss(), large: await large.rss() };

      say(`sustained submissions: batch POST, ${BATCH}/request, 2 in flight (${R} rounds of ${K} batches per log) …`);
      const next = { small: 0, large: 0 };
      const sub = { small: { entries: 0, ms: 0, lat: [] as number[] }, large: { entries: 0, ms: 0, lat: [] as number[] } };
      const check = (which: string, r: LoadResult) => {
        if (r.errors > 0) throw new Error(`${which} batch: ${r.errors} errors, e.g. ${r.failures.join(' | ')}`);
        for (const b of r.bodies) {
          const results = (JSON.parse(b.toString('utf8')) as { results: Array<{ index?: number }> }).results;
          if (results.length !== BATCH || results.some((x) => x.index === undefined)) throw new Error(`${which}: a batch reply with failed entries`);
        }
      };
      for (const which of ['small', 'large'] as const) {
        check(which, await closedLoop({ url: logs[which].url, concurrency: 1, durationMs: 1e9, keepBodies: 1, request: (i) => (i < 1 ? batches[next[which]++] : undefined) }));
      }
      for (let round = 0; round < R; round++) {
        for (const which of ['small', 'large'] as const) {
          const r: LoadResult = await closedLoop({
            url: logs[which].url, concurrency: 2, durationMs: 1e9, keepBodies: K,
            request: (i) => (i < K ? batches[next[which]++] : undefined),
          });
          check(which, r);
          if (r.completed !== K) throw new Error(`${which}: ${r.completed} of ${K} batches answered`);
          sub[which].entries += K * BATCH;
          sub[which].ms += r.elapsedMs;
          sub[which].lat.push(...r.latencies);
        }
      }
      const rate = { small: (sub.small.entries * 1000) / sub.small.ms, large: (sub.large.entries * 1000) / sub.large.ms };
      const rss = { small: Math.max(rssReads.small, await small.rss()), large: Math.max(rssReads.large, await large.rss()) };

      const B = `${size.large.toLocaleString('en')}-entry log`;
      const bpe = disk.large / size.large;
      figs.push(
        { name: `${B}: bytes on disk per entry`, value: bpe, unit: 'B', baseline: dataPerEntry, ratio: bpe / dataPerEntry, note: `${(disk.large / 2 ** 30).toFixed(2)} GiB (log.sqlite + WAL); baseline: the entry's own bytes (leaf ${(dataPerEntry - 32).toFixed(0)} B + 32 B leaf hash); the ${SMALL}-entry log: ${(disk.small / SMALL).toFixed(0)} B/entry` },
        { name: `${B}: start-up (startLog until listening)`, value: large.startupMs, unit: 'ms', baseline: small.startupMs, target: '≤ 2× 1,000-entry log', pass: large.startupMs <= 2 * Math.max(small.startupMs, 50), note: `process spawn to listening ${large.readyMs.toFixed(0)} ms vs ${small.readyMs.toFixed(0)} ms (a baseline under 50 ms counts as 50 ms)` },
        { name: `${B}: RSS after reads and submissions`, value: rss.large / 2 ** 20, unit: 'MiB', baseline: rss.small / 2 ** 20, target: '≤ 2× 1,000-entry log', pass: rss.large <= 2 * rss.small },
      );
      const names: Record<K, string> = { proof: 'inclusion proof', tile: 'GET /tile/0/… (random full tile)', bundle: 'GET /tile/entries/… (random full bundle)' };
      for (const k of ['proof', 'tile', 'bundle'] as K[]) {
        for (const q of [50, 99]) {
          const v = p(lat.large[k], q);
          const b = p(lat.small[k], q);
          figs.push({
            name: `${B}: ${names[k]} p${q} (C=1)`, value: v, unit: 'ms', baseline: b, ratio: v / b, target: '≤ 2× 1,000-entry log', pass: v <= 2 * b,
            ...(q === 50 ? { note: `${lat.large[k].length} vs ${lat.small[k].length} requests; ${warmS === undefined ? 'cold: the big file as the OS page cache held it' : `the big file read once into the page cache first (${warmS.toFixed(1)} s)`}` } : {}),
          });
        }
      }
      figs.push({
        name: `${B}: sustained batch submissions (${BATCH}/req, C=2)`, value: rate.large, unit: 'entries/s', baseline: rate.small, ratio: rate.large / rate.small,
        target: '≥ 50% of 1,000-entry log', pass: rate.large >= 0.5 * rate.small,
        note: `request p50 ${p(sub.large.lat, 50).toFixed(0)} ms, p99 ${p(sub.large.lat, 99).toFixed(0)} ms vs ${p(sub.small.lat, 50).toFixed(0)} / ${p(sub.small.lat, 99).toFixed(0)} ms; ${R} rounds × ${K} batches each, after 1 warm-up batch; the big log grew to ${(size.large + next.large * BATCH).toLocaleString('en')}`,
      });
    } finally {
      await small.stop();
      await large.stop();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return figs;
}

if (process.argv[1] !== undefined && process.argv[1].endsWith('bench/large.ts')) {
  const figs = await benchLarge({ quick: process.env.BENCH_QUICK === '1' });
  for (const f of figs) {
    const ratio = f.ratio ?? (f.baseline ? f.value / f.baseline : undefined);
    console.log(`${f.name}: ${f.value.toFixed(2)} ${f.unit}${f.baseline !== undefined ? ` (baseline ${f.baseline.toFixed(2)}${ratio !== undefined ? `, ${(ratio * 100).toFixed(0)}%` : ''})` : ''}${f.target ? ` target ${f.target} ${f.pass ? 'PASS' : 'FAIL'}` : ''}${f.note ? `\n    ${f.note}` : ''}`);
  }
}
