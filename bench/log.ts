/**
 * The log's benchmark (issue 2). Every figure is measured next to its baseline in the same run:
 *  - single-entry POST /v1/entries vs the ceiling 1/(1/bare + 2/verify) of a bare express handler plus two raw
 *    node:crypto verifications per request; open-loop latency at 1,000 entries/s;
 *  - POST /v1/entries/batch vs raw node:crypto verification (2 per entry) on the same number of threads;
 *  - inclusion proofs and tile reads vs a bare GET handler;
 *  - a 1,000,000-entry log (bulk-built): start-up, RSS, proof latency vs a 1,000-entry log.
 * Servers run in a child process (bench/server-child.ts); the load generator (bench/load.ts) runs here.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSubmission, publisherMessage, registryMessage, type Submission } from '../core/entry.ts';
import { formatTilePath } from '../core/tiles.ts';
import { encodeBase64 } from '../core/encoding.ts';
import { addRegistry } from '../server/registries.ts';
import { registriesFile } from '../server/main.ts';
import { defaultVerifyThreads } from '../server/verify-pool.ts';
import { artifact, sign, REGISTRY, REGISTRY_NAME } from '../test/support/submissions.ts';
import { mulberry32 } from '../test/support/prng.ts';
import { closedLoop, httpRequest, openLoop, percentile, type LoadResult } from './load.ts';
import { verifyRate, type VerifyItem } from './verify-baseline.ts';
import { buildLog } from './build-log.ts';
import type { StartMsg } from './server-child.ts';

export interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline?: number;
  /** Human-readable target, e.g. "≥ 70% of baseline", "≤ 500 ms". */
  target?: string | number;
  /** Whether the target is met (undefined: informational). */
  pass?: boolean;
  /** value / baseline, when that is what the target is about. */
  ratio?: number;
  note?: string;
}

export interface LogBenchOptions {
  quick?: boolean;
  log?: (msg: string) => void;
}

interface Child {
  url: string;
  startupMs: number;
  treeSize?: number;
  readyMs: number;
  rss(): Promise<number>;
  /** The child's CPU time so far (user + system, microseconds): a figure robust to other load on the machine. */
  cpuMicros(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Verification worker threads of the benchmarked log: BENCH_VERIFY_THREADS, else the server's own default
 * (server/verify-pool.ts defaultVerifyThreads(): cores − 1, at least 1). The log child is started with exactly this many
 * (bench/server-child.ts passes it as its verifyThreads setting; 0 = on the event loop), and the batch baseline
 * verifies on as many threads (at least 1).
 */
export const VERIFY_THREADS = Number(process.env.BENCH_VERIFY_THREADS ?? defaultVerifyThreads());
if (!Number.isInteger(VERIFY_THREADS) || VERIFY_THREADS < 0 || VERIFY_THREADS > 64) {
  throw new Error(`BENCH_VERIFY_THREADS must be an integer 0–64, got ${JSON.stringify(process.env.BENCH_VERIFY_THREADS)}`);
}

const CHILD = fileURLToPath(new URL('./server-child.ts', import.meta.url));

/** Starts bench/server-child.ts in a fresh node process (with the tsx loader) and has it listen. */
async function startChild(msg: StartMsg): Promise<Child> {
  const t0 = performance.now();
  const prof = process.env.BENCH_CPU_PROF; // a directory: the server writes a V8 CPU profile there (for optimizing)
  const execArgv = ['--import', import.meta.resolve('tsx'), ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])];
  const child: ChildProcess = fork(CHILD, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () => new Promise<Record<string, unknown>>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`bench server exited (${code})`));
    child.once('exit', onExit);
    child.once('message', (m) => {
      child.off('exit', onExit);
      const r = m as Record<string, unknown>;
      if (r.error !== undefined) reject(new Error(String(r.error)));
      else resolve(r);
    });
  });
  await next();
  child.send(msg);
  const r = await next();
  const readyMs = performance.now() - t0;
  return {
    url: r.url as string,
    startupMs: r.startupMs as number,
    ...(r.treeSize !== undefined ? { treeSize: r.treeSize as number } : {}),
    readyMs,
    async rss() {
      child.send({ cmd: 'rss' });
      return (await next()).rss as number;
    },
    async cpuMicros() {
      child.send({ cmd: 'cpu' });
      return (await next()).cpu as number;
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ cmd: 'stop' });
      await exited;
    },
  };
}

/** `n` distinct signed submissions (artifact names unique to this run). */
function makeSubmissions(runId: string, from: number, n: number): Submission[] {
  const out: Submission[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = sign(artifact(from + i, { name: `bench-${runId}` }));
  return out;
}

const body = (s: Submission) => Buffer.from(JSON.stringify(formatSubmission(s)), 'utf8');
const lat = (r: LoadResult) => `p50 ${percentile(r.latencies, 50).toFixed(1)} ms, p99 ${percentile(r.latencies, 99).toFixed(1)} ms`;

function checkErrors(what: string, r: LoadResult): void {
  if (r.errors > 0) throw new Error(`${what}: ${r.errors} of ${r.completed} requests failed, e.g. ${r.failures.join(' | ')}`);
}

export { startChild, makeSubmissions };

export async function benchLog(o: LogBenchOptions = {}): Promise<Figure[]> {
  const say = o.log ?? ((m: string) => console.error(m));
  const quick = o.quick ?? false;
  const D = quick ? 1500 : 5000; // ms per throughput measurement
  const SINGLE_CONCURRENCY = 512;
  const GET_CONCURRENCY = 64;
  const BATCH = 1000;
  const BATCH_CONCURRENCY = 2;
  const OPEN_RATE = 1000;
  const BIG = quick ? 100_000 : 1_000_000;
  const SMALL = 1000;
  const runId = Date.now().toString(36);
  const root = mkdtempSync(join(tmpdir(), 'pkglog-bench-'));
  const figs: Figure[] = [];
  let nextArtifact = 0;
  const take = (n: number) => {
    const t = performance.now();
    const s = makeSubmissions(runId, nextArtifact, n);
    nextArtifact += n;
    say(`  signed ${n} submissions in ${(performance.now() - t).toFixed(0)} ms`);
    return s;
  };

  try {
    // Baselines and measurements alternate in ROUNDS short rounds (both servers stay up, the idle one costs nothing),
    // so a noisy neighbour hits both alike; each figure sums its rounds, and the note lists the per-round ratios.
    const sample = makeSubmissions(runId, 1e9, 64);
    const items: VerifyItem[] = sample.flatMap((s) => [
      { publicKey: s.publisherKey, message: publisherMessage(s), signature: s.publisherSignature },
      { publicKey: REGISTRY.publicKey, message: registryMessage(s, s.publisherKey, s.publisherSignature), signature: s.registrySignature },
    ]);
    const verifyThreads = Math.max(1, VERIFY_THREADS); // threads of the batch baseline (0 worker threads: the event loop)
    const R = quick ? 1 : 3;
    const W = D / R; // window of one round
    const RAMP = 1000; // load before each window opens (a closed loop at C=512 needs ~1 s to fill its pipeline)
    const singleBodies = take(Math.ceil((3000 * (D + R * RAMP)) / 1000) + 2000).map((s) => httpRequest('POST', '/v1/entries', body(s)));
    const dir = join(root, 'log');
    addRegistry(registriesFile(dir), REGISTRY_NAME, encodeBase64(REGISTRY.publicKey), { ecosystems: ['pypi', 'npm'] });
    const bare = await startChild({ cmd: 'start', mode: 'bare' });
    const log = await startChild({ cmd: 'start', mode: 'log', dataDir: dir, verifyThreads: VERIFY_THREADS });
    say(`  the log verifies on ${VERIFY_THREADS === 0 ? 'its event loop' : `${VERIFY_THREADS} worker thread(s)`} (BENCH_VERIFY_THREADS, default cores − 1 = ${defaultVerifyThreads()}); the batch baseline on ${verifyThreads}`);
    try {
      // Warm-up of both with the same requests (the log's warm-up entries are real submissions).
      await closedLoop({ url: bare.url, concurrency: SINGLE_CONCURRENCY, durationMs: 1e9, warmup: 0, request: (i) => (i < 1000 ? singleBodies[i] : undefined) });
      await closedLoop({ url: log.url, concurrency: SINGLE_CONCURRENCY, durationMs: 1e9, warmup: 0, request: (i) => (i < 1000 ? singleBodies[i] : undefined) });
      let used = 1000;

      say(`single-entry submissions vs bare express + raw verify (${R} rounds) …`);
      const sum = { verify: 0, bare: 0, log: 0 };
      const perRound: string[] = [];
      const singleLat: number[] = [];
      const bareLat: number[] = [];
      for (let r = 0; r < R; r++) {
        const v = await verifyRate(items, 1, W / 2);
        const b = await closedLoop({ url: bare.url, concurrency: SINGLE_CONCURRENCY, durationMs: W, rampMs: RAMP, request: (i) => singleBodies[i % singleBodies.length] });
        checkErrors('bare POST', b);
        const l = await closedLoop({ url: log.url, concurrency: SINGLE_CONCURRENCY, durationMs: W, rampMs: RAMP, request: () => singleBodies[used++] });
        checkErrors('single-entry POST', l);
        if (used >= singleBodies.length) say('  (ran out of pre-signed submissions: a round ended early; its rate is still valid)');
        sum.verify += v;
        sum.bare += b.rate;
        sum.log += l.rate;
        singleLat.push(...l.latencies);
        bareLat.push(...b.latencies);
        perRound.push(`${((100 * l.rate) / (1 / (1 / b.rate + 2 / v))).toFixed(0)}%`);
      }
      const verify1 = sum.verify / R;
      const barePost = sum.bare / R;
      const ceiling = 1 / (1 / barePost + 2 / verify1);
      const singleRate = sum.log / R;
      const ratio = singleRate / ceiling;
      const L = (a: number[]) => lat({ latencies: Float64Array.from(a) } as LoadResult);
      figs.push(
        { name: 'raw Ed25519 verify (node:crypto, 1 thread)', value: verify1, unit: 'verif/s' },
        { name: `bare express POST (C=${SINGLE_CONCURRENCY}, same bodies)`, value: barePost, unit: 'req/s', note: L(bareLat) },
        { name: 'single-entry ceiling 1/(1/bare+2/verify)', value: ceiling, unit: 'req/s' },
        {
          name: `single-entry POST /v1/entries (C=${SINGLE_CONCURRENCY})`, value: singleRate, unit: 'req/s', baseline: ceiling, ratio,
          target: '≥ 70% of ceiling', pass: ratio >= 0.7,
          note: `${L(singleLat)}; per round ${perRound.join(' ')}; the log verifies on ${VERIFY_THREADS === 0 ? 'its event loop' : `${VERIFY_THREADS} worker thread(s) beside its event loop`} (the ceiling is for one thread)`,
        },
      );

      say(`open loop at ${OPEN_RATE}/s …`);
      const openBodies = take(Math.round((OPEN_RATE * D) / 1000)).map((s) => httpRequest('POST', '/v1/entries', body(s)));
      const open = await openLoop({ url: log.url, rate: OPEN_RATE, durationMs: D, request: (i) => openBodies[i]!, connections: 256 });
      checkErrors('open-loop POST', open);
      const p50 = percentile(open.latencies, 50);
      const p99 = percentile(open.latencies, 99);
      figs.push(
        { name: `open loop ${OPEN_RATE}/s for ${D / 1000} s: p50 request→proof`, value: p50, unit: 'ms' },
        { name: `open loop ${OPEN_RATE}/s for ${D / 1000} s: p99 request→proof`, value: p99, unit: 'ms', target: '≤ 500 ms', pass: p99 <= 500, note: `max in flight ${open.maxInflight}, achieved ${open.rate.toFixed(0)}/s` },
      );

      say(`batch submissions vs raw verify on ${verifyThreads} thread(s) (${R} rounds) …`);
      const nBatches = Math.ceil((1.5 * 4000 * verifyThreads * D) / 1000 / BATCH) + 2 * R + BATCH_CONCURRENCY;
      const batchSubs = take(nBatches * BATCH);
      const batchBodies: Buffer[] = [];
      for (let b = 0; b < nBatches; b++) {
        const entries = batchSubs.slice(b * BATCH, (b + 1) * BATCH).map((s) => formatSubmission(s));
        batchBodies.push(httpRequest('POST', '/v1/entries/batch', JSON.stringify({ entries })));
      }
      let nextBatch = 0;
      const batchReq = () => batchBodies[nextBatch++];
      await closedLoop({ url: log.url, concurrency: BATCH_CONCURRENCY, durationMs: 1e9, request: (i) => (i < BATCH_CONCURRENCY ? batchReq() : undefined) });
      const bsum = { verify: 0, log: 0 };
      const bRound: string[] = [];
      const batchLat: number[] = [];
      for (let r = 0; r < R; r++) {
        const v = await verifyRate(items, verifyThreads, W / 2);
        const l = await closedLoop({ url: log.url, concurrency: BATCH_CONCURRENCY, durationMs: W, rampMs: RAMP, request: () => batchReq(), keepBodies: 1 });
        checkErrors('batch POST', l);
        for (const b of l.bodies) {
          const results = (JSON.parse(b.toString('utf8')) as { results: Array<{ index?: number; status?: number }> }).results;
          const bad = results.filter((x) => x.index === undefined);
          if (results.length !== BATCH || bad.length > 0) throw new Error(`batch reply has ${bad.length} failed entries: ${JSON.stringify(bad[0])}`);
        }
        bsum.verify += v / 2;
        bsum.log += l.rate * BATCH;
        batchLat.push(...l.latencies);
        bRound.push(`${((100 * l.rate * BATCH) / (v / 2)).toFixed(0)}%`);
      }
      const batchRate = bsum.log / R;
      const verifyEntries = bsum.verify / R;
      figs.push({
        name: `batch POST /v1/entries/batch (${BATCH}/req, C=${BATCH_CONCURRENCY})`, value: batchRate, unit: 'entries/s', baseline: verifyEntries,
        ratio: batchRate / verifyEntries, target: `≥ 70% of raw verify (${verifyThreads} thread${verifyThreads > 1 ? 's' : ''}, 2/entry)`,
        pass: batchRate / verifyEntries >= 0.7, note: `${L(batchLat)}; per round ${bRound.join(' ')}`,
      });

      // Reads on the log just built (tens of thousands of entries).
      const size = await treeSize(log.url);
      say(`inclusion proofs and tiles vs bare GET (tree size ${size}, ${R} rounds) …`);
      const rnd = mulberry32(7);
      const proofReqs = Array.from({ length: 4096 }, () => httpRequest('GET', `/v1/proof/inclusion?index=${Math.floor(rnd() * size)}&size=${size}`));
      const fullTiles = Math.floor(size / 256);
      const tileReqs = Array.from({ length: 4096 }, () => httpRequest('GET', '/' + formatTilePath({ level: 0, index: Math.floor(rnd() * fullTiles), width: 256 })));
      const getReq = httpRequest('GET', '/v1/proof/inclusion?index=1&size=2');
      const gsum = { bare: 0, proofs: 0, tiles: 0 };
      const gl = { bare: [] as number[], proofs: [] as number[], tiles: [] as number[] };
      for (let r = 0; r < R; r++) {
        const runs = {
          bare: await closedLoop({ url: bare.url, concurrency: GET_CONCURRENCY, durationMs: W, warmup: r === 0 ? 1000 : 0, request: () => getReq }),
          proofs: await closedLoop({ url: log.url, concurrency: GET_CONCURRENCY, durationMs: W, warmup: r === 0 ? 1000 : 0, request: (i) => proofReqs[i % proofReqs.length] }),
          tiles: await closedLoop({ url: log.url, concurrency: GET_CONCURRENCY, durationMs: W, warmup: r === 0 ? 1000 : 0, request: (i) => tileReqs[i % tileReqs.length] }),
        };
        for (const k of ['bare', 'proofs', 'tiles'] as const) {
          checkErrors(k, runs[k]);
          gsum[k] += runs[k].rate / R;
          gl[k].push(...runs[k].latencies);
        }
      }
      figs.push(
        { name: `bare express GET (C=${GET_CONCURRENCY})`, value: gsum.bare, unit: 'req/s', note: L(gl.bare) },
        { name: `GET /v1/proof/inclusion (random index, size ${size}, C=${GET_CONCURRENCY})`, value: gsum.proofs, unit: 'req/s', baseline: gsum.bare, ratio: gsum.proofs / gsum.bare, target: '≥ 50% of bare GET', pass: gsum.proofs / gsum.bare >= 0.5, note: L(gl.proofs) },
        { name: `GET /tile/0/… (random full tile, C=${GET_CONCURRENCY})`, value: gsum.tiles, unit: 'req/s', baseline: gsum.bare, ratio: gsum.tiles / gsum.bare, target: '≥ 50% of bare GET', pass: gsum.tiles / gsum.bare >= 0.5, note: L(gl.tiles) },
        { name: 'RSS of the log after the submission/read runs', value: (await log.rss()) / 2 ** 20, unit: 'MiB' },
      );
    } finally {
      await log.stop();
      await bare.stop();
    }

    // ---- A big log vs a small one ---------------------------------------------------------------------------------
    say(`big log: bulk-building ${BIG.toLocaleString('en')} entries …`);
    const bigDir = join(root, 'big');
    const t = performance.now();
    buildLog(bigDir, BIG);
    const buildS = (performance.now() - t) / 1000;
    const smallDir = join(root, 'small');
    buildLog(smallDir, SMALL);
    figs.push({ name: `bulk build of the ${BIG.toLocaleString('en')}-entry log`, value: buildS, unit: 's', target: '≤ 120 s', pass: buildS <= 120 });

    const probe = async (dir: string, n: number) => {
      const c = await startChild({ cmd: 'start', mode: 'log', dataDir: dir, verifyThreads: VERIFY_THREADS });
      try {
        if (c.treeSize !== n) throw new Error(`log has ${c.treeSize} entries, expected ${n}`);
        const r = mulberry32(n);
        const reqs = Array.from({ length: 20000 }, () => httpRequest('GET', `/v1/proof/inclusion?index=${Math.floor(r() * n)}&size=${n}`));
        // Sequential requests (concurrency 1) for latency, each a random index: mostly cold caches on the big log.
        const seq = await closedLoop({ url: c.url, concurrency: 1, durationMs: D / 2, warmup: 20, request: (i) => reqs[i % reqs.length] });
        checkErrors('proofs', seq);
        const par = await closedLoop({ url: c.url, concurrency: GET_CONCURRENCY, durationMs: D / 2, request: (i) => reqs[(i + 7919) % reqs.length] });
        checkErrors('proofs', par);
        return { startupMs: c.startupMs, readyMs: c.readyMs, seq, par, rss: await c.rss() };
      } finally {
        await c.stop();
      }
    };
    say('big log: start-up, RSS and proof latency …');
    const small = await probe(smallDir, SMALL);
    const big = await probe(bigDir, BIG);
    const B = BIG.toLocaleString('en');
    const p50Big = percentile(big.seq.latencies, 50);
    const p50Small = percentile(small.seq.latencies, 50);
    const p99Big = percentile(big.seq.latencies, 99);
    const p99Small = percentile(small.seq.latencies, 99);
    figs.push(
      { name: `${B}-entry log: start-up (startLog until listening)`, value: big.startupMs, unit: 'ms', baseline: small.startupMs, target: '< 1000 ms', pass: big.startupMs < 1000, note: `process spawn to listening ${big.readyMs.toFixed(0)} ms` },
      { name: `${B}-entry log: RSS after proof load`, value: big.rss / 2 ** 20, unit: 'MiB', baseline: small.rss / 2 ** 20, target: '< 250 MiB', pass: big.rss / 2 ** 20 < 250 },
      { name: `${B}-entry log: proof latency p50 (sequential, random index)`, value: p50Big, unit: 'ms', baseline: p50Small, ratio: p50Big / p50Small, target: '≤ 2× 1,000-entry log', pass: p50Big <= 2 * p50Small },
      { name: `${B}-entry log: proof latency p99 (sequential, random index)`, value: p99Big, unit: 'ms', baseline: p99Small, ratio: p99Big / p99Small, target: '≤ 2× 1,000-entry log', pass: p99Big <= 2 * p99Small },
      { name: `${B}-entry log: proofs/s (C=${GET_CONCURRENCY}, random index)`, value: big.par.rate, unit: 'req/s', baseline: small.par.rate, ratio: big.par.rate / small.par.rate },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return figs;
}

async function treeSize(url: string): Promise<number> {
  const text = await (await fetch(`${url}/checkpoint`)).text();
  return Number(text.split('\n')[1]);
}
