/**
 * The engine under monitor and audit: replay the log's tiles to a verified checkpoint while an EntryChecker
 * inspects every entry, flushing the file index (and letting the caller persist its position) at bounded intervals,
 * then turn what was found into evidence.
 */
import { readdir } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatTilePath, type Tile } from '../core/tiles.ts';
import { fail } from '../core/errors.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import { replay, type TileSource, type TreePosition, type TileViolation } from './replay.ts';
import type { EntryChecker } from './entry-checker.ts';
import { buildViolation, formatViolation } from './violation.ts';
import { leafFromTiles } from '../runtime/tiles.ts';
import { decodeLeaf, fileKey } from '../core/entry.ts';

export interface Progress {
  done: number;
  total: number;
  start: number;
  rate: number;
}

export interface FollowOptions {
  /** Flush the file index (and call onFlush) after at least this many new entries. */
  flushEvery?: number;
  onFlush?: (pos: TreePosition) => void | Promise<void>;
  onProgress?: (p: Progress) => void;
  /** Minimum milliseconds between progress calls. */
  progressEveryMs?: number;
  chunkBundles?: number;
  concurrency?: number;
  skipHashTiles?: boolean;
}

export interface FollowResult {
  pos: TreePosition;
  violation?: TileViolation;
  entries: number;
  seconds: number;
}

export async function follow(
  source: TileSource,
  from: TreePosition,
  target: Checkpoint,
  checker: EntryChecker,
  opts: FollowOptions = {},
): Promise<FollowResult> {
  const t0 = performance.now();
  const flushEvery = opts.flushEvery ?? 1 << 18;
  let sinceFlush = 0;
  let lastProgress = t0;
  const startSize = from.size;
  const r = await replay(
    source,
    from,
    target,
    {
      entry: (i, leaf, h) => {
        checker.check(i, leaf, h);
        sinceFlush++;
      },
      chunk: async (pos) => {
        const now = performance.now();
        if (opts.onProgress && now - lastProgress >= (opts.progressEveryMs ?? 2000)) {
          lastProgress = now;
          const done = pos.size - startSize;
          opts.onProgress({ done, total: target.treeSize - startSize, start: startSize, rate: done / ((now - t0) / 1000) });
        }
        if (sinceFlush >= flushEvery && pos.size < target.treeSize) {
          checker.flushIndex();
          sinceFlush = 0;
          await opts.onFlush?.(pos);
        }
      },
    },
    { chunkBundles: opts.chunkBundles, concurrency: opts.concurrency, skipHashTiles: opts.skipHashTiles },
  );
  checker.flushIndex();
  const seconds = (performance.now() - t0) / 1000;
  return { pos: r.pos, ...('violation' in r ? { violation: r.violation } : {}), entries: r.pos.size - startSize, seconds };
}

export interface Finding {
  kind: string;
  message: string;
  /** Evidence JSON text (pkglog-violation-evidence/v1), when it could be built. */
  evidence?: string;
}

/** Evidence for every entry-level problem the checker found (after the replay reached a verified root). */
export async function findingsWithEvidence(
  source: TileSource,
  signed: string,
  checkpoint: Checkpoint,
  checker: EntryChecker,
  maxEvidence = 20,
): Promise<Finding[]> {
  const out: Finding[] = [];
  let built = 0;
  const withEvidence = async (kind: string, message: string, build: () => ReturnType<typeof buildViolation>) => {
    let evidence: string | undefined;
    if (built < maxEvidence) {
      built++;
      try {
        evidence = formatViolation(await build());
      } catch {
        evidence = undefined;
      }
    }
    out.push({ kind, message, ...(evidence !== undefined ? { evidence } : {}) });
  };
  for (const c of checker.conflicts) {
    // The index compares 16-byte prefixes: confirm with the full leaves before reporting.
    try {
      const [a, b] = await Promise.all([leafFromTiles(source, c.firstIndex, checkpoint.treeSize), leafFromTiles(source, c.index, checkpoint.treeSize)]);
      const [ea, eb] = [decodeLeaf(a), decodeLeaf(b)];
      if (fileKey(ea) !== fileKey(eb) || ea.sha256 === eb.sha256) continue;
    } catch {
      // report it anyway: the evidence step will say what it could not build
    }
    const message = `second artifact for an already logged file: entry ${c.index} logs a different artifact than entry ${c.firstIndex} for the same ecosystem/name/version/filename`;
    await withEvidence('conflict', message, () => buildViolation(source, signed, checkpoint, 'conflict', [c.firstIndex, c.index], message));
  }
  for (const p of checker.problems) {
    const kind = p.kind === 'malformed-entry' ? 'malformed-entry' : 'bad-signature';
    await withEvidence(p.kind, p.message, () => buildViolation(source, signed, checkpoint, kind, [p.index], p.message));
  }
  return out;
}

/** Tiles from a local directory laid out like the log's HTTP paths (a mirror): `<dir>/tile/0/000`, … */
export class DirTileSource implements TileSource {
  constructor(readonly dir: string) {}
  async tile(t: Tile): Promise<Buffer> {
    const path = join(this.dir, formatTilePath(t));
    try {
      return await readFile(path);
    } catch {
      // A full tile also serves any partial width.
      if (t.width < 256) {
        try {
          const full = await readFile(join(this.dir, formatTilePath({ ...t, width: 256 })));
          const n = t.level < 0 ? undefined : t.width * 32;
          if (n !== undefined) return full.subarray(0, n);
        } catch {
          // fall through
        }
      }
      return fail('not_found', `tile ${path} not found`);
    }
  }
  async checkpoint(): Promise<string> {
    await readdir(this.dir);
    return readFile(join(this.dir, 'checkpoint'), 'utf8');
  }
}
