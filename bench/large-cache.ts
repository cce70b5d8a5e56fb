/**
 * The bulk-built big log of bench/large.ts, built once and kept under the system temp directory, keyed by a build
 * version, the store's schema version and the size: `<tmp>/pkglog-bench-cache/log-v<B>-s<S>-<N>`. It is built into
 * `….building` and renamed into place when complete, so an interrupted build is never used (it restarts from
 * scratch). Runs append their sustained-submission entries to it, so its size only grows (the bench reads the size
 * it finds). `BENCH_CACHE_DIR` overrides the parent directory; remove it to rebuild.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCHEMA_VERSION } from '../log-store/schema.ts';
import { buildLog } from './build-log.ts';

/** Bump when bench/build-log.ts changes what it writes. */
export const BUILD_VERSION = 1;

export function cacheDir(size: number): string {
  const parent = process.env.BENCH_CACHE_DIR ?? join(tmpdir(), 'pkglog-bench-cache');
  return join(parent, `log-v${BUILD_VERSION}-s${SCHEMA_VERSION}-${size}`);
}

/** The cached log of `size` bulk-built entries (building it first if needed); `built` says whether this call built it. */
export function cachedLog(size: number, say: (m: string) => void = () => {}): { dir: string; built: boolean; buildS: number } {
  const dir = cacheDir(size);
  if (existsSync(join(dir, 'log.sqlite'))) return { dir, built: false, buildS: 0 };
  const tmp = `${dir}.building`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  say(`bulk-building ${size.toLocaleString('en')} entries into ${dir} (once; later runs reuse it) …`);
  const t0 = performance.now();
  buildLog(tmp, size);
  const buildS = (performance.now() - t0) / 1000;
  renameSync(tmp, dir);
  return { dir, built: true, buildS };
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  const n = Number(process.argv[2] ?? 10_000_000);
  const r = cachedLog(n, (m) => process.stderr.write(m + '\n'));
  console.log(JSON.stringify(r));
}
