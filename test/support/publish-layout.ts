/**
 * The tlog-tiles layout a publisher must produce (server/publish.ts), computed with the independent tlog-tiles code
 * (test/interop): every full tile and bundle, plus the partial tiles of every signed size whose full tile is not there
 * yet; with `gzipBundles` (a directory, for nginx gzip_static) every bundle also as `<bundle>.gz`.
 */
import * as I from '../interop/independent.ts';

/** The layout for tree size `size` after checkpoints were signed at `signed` sizes (independent code). */
export function expectedLayout(size: number, signed: number[], gzipBundles = true): string[] {
  const out = new Set<string>(['checkpoint']);
  for (let level = 0; I.TILE ** level <= size; level++) {
    const span = I.TILE ** level;
    const kinds: Array<number | 'entries'> = level === 0 ? [0, 'entries'] : [level];
    for (let i = 0; i < I.fullTiles(level, size); i++) for (const k of kinds) out.add(I.tilePath(k, i));
    const tileOf = (s: number) => Math.floor(s / (span * I.TILE));
    for (const s of signed) {
      const w = I.partialWidth(level, s);
      if (s <= size && w > 0 && tileOf(s) === tileOf(size) && I.partialWidth(level, size) > 0) {
        for (const k of kinds) out.add(I.tilePath(k, tileOf(s), w));
      }
    }
  }
  if (gzipBundles) for (const p of [...out]) if (p.startsWith('tile/entries/')) out.add(p + '.gz');
  return [...out].sort();
}

