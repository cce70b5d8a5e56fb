/**
 * bench/publish.ts `benchPublish()`: the static read path (`--publish-dir`, server/publish.ts).
 * - publication catch-up: a log of N entries (bench/build-log.ts) started with an empty --publish-dir publishes every
 *   tile and bundle in the background after it listens; entries/s until its checkpoint is in the directory;
 * - GET of the same random full level-0 tiles at the same concurrency (C=64) from nginx (1 worker process, the server
 *   block of docs/nginx-example.conf, test/support/nginx.ts) serving that directory and from the log's own /tile route
 *   (one Node.js process, in the bench server child), interleaved rounds; reported as nginx req/s with the log's as the
 *   baseline, and the ratio. Informational (no target): the point of the figure is how much read load moves off the log.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTilePath } from '../core/tiles.ts';
import { buildLog } from './build-log.ts';
import { closedLoop, httpRequest, percentile, type LoadResult } from './load.ts';
import { startChild, type Figure } from './log.ts';
import { startNginx } from '../test/support/nginx.ts';
import { mulberry32 } from '../test/support/prng.ts';

const C = 64;

const lat = (l: number[]) => `p50 ${percentile(Float64Array.from(l), 50).toFixed(1)} ms, p99 ${percentile(Float64Array.from(l), 99).toFixed(1)} ms`;

function publishedSize(dir: string): number {
  try {
    return Number(readFileSync(join(dir, 'checkpoint'), 'utf8').split('\n')[1]);
  } catch {
    return -1;
  }
}

export async function benchPublish(o: { quick?: boolean } = {}): Promise<Figure[]> {
  const N = o.quick ? 32_768 : 262_144;
  const R = o.quick ? 1 : 3;
  const W = o.quick ? 2000 : 4000;
  const root = mkdtempSync(join(tmpdir(), 'pkglog-bench-publish-'));
  const dataDir = join(root, 'data');
  const publishDir = join(root, 'publish');
  const say = (m: string) => process.stderr.write(`bench publish: ${m}\n`);
  say(`building a ${N}-entry log …`);
  const size = buildLog(dataDir, N, 65_536);
  say('starting the log with an empty --publish-dir …');
  const t0 = performance.now();
  const log = await startChild({ cmd: 'start', mode: 'log', dataDir, publishDir, batchIntervalMs: 100, verifyThreads: 0 });
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  try {
    while (publishedSize(publishDir) < size) await new Promise((r) => setTimeout(r, 20));
    const publishMs = performance.now() - t0 - log.startupMs;
    nginx = await startNginx(publishDir, { workers: 1 });
    const rnd = mulberry32(42);
    const full = Math.floor(size / 256);
    const reqs = Array.from({ length: 4096 }, () => httpRequest('GET', '/' + formatTilePath({ level: 0, index: Math.floor(rnd() * full), width: 256 })));
    const sum = { log: 0, nginx: 0 };
    const lats = { log: [] as number[], nginx: [] as number[] };
    const ratios: string[] = [];
    for (let r = 0; r < R; r++) {
      const run = async (url: string): Promise<LoadResult> => {
        const x = await closedLoop({ url, concurrency: C, durationMs: W, warmup: r === 0 ? 1000 : 0, rampMs: 500, request: (i) => reqs[i % reqs.length] });
        if (x.errors > 0) throw new Error(`${url}: ${x.errors} of ${x.completed} tile requests failed, e.g. ${x.failures.join(' | ')}`);
        return x;
      };
      const a = await run(log.url);
      const b = await run(nginx.url);
      sum.log += a.rate / R;
      sum.nginx += b.rate / R;
      lats.log.push(...a.latencies);
      lats.nginx.push(...b.latencies);
      ratios.push(`${(b.rate / a.rate).toFixed(1)}×`);
    }
    return [
      {
        name: `publication catch-up (${size.toLocaleString('en')} entries, empty --publish-dir, fsync on)`, value: size / (publishMs / 1000), unit: 'entries/s',
        note: `${(publishMs / 1000).toFixed(1)} s for ${Math.ceil(size / 256) * 2 + Math.ceil(size / 65_536)}+ files (tiles, bundles and their .gz), in the background after the log listened`,
      },
      {
        name: `GET tile/0/… from nginx vs the log's /tile (same random full tiles, C=${C})`, value: sum.nginx, unit: 'req/s', baseline: sum.log, ratio: sum.nginx / sum.log,
        note: `nginx (1 worker) ${lat(lats.nginx)}; log /tile (1 process) ${lat(lats.log)}; per-round nginx/log ${ratios.join(', ')}`,
      },
    ];
  } finally {
    await nginx?.stop();
    await log.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
