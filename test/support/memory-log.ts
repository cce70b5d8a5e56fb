/**
 * A growable in-memory tlog-tiles log for tests: entries appended with core/integrate, hash tiles and entry bundles
 * served by path at any width up to the current size, checkpoints signed by an Ed25519 log key. `tamper` changes what
 * it serves (never its own state), to play a lying log.
 */
import { createHash } from 'node:crypto';
import { integrate } from '../../core/integrate.ts';
import { formatEntryBundle, formatTilePath, tileWidth, TILE_WIDTH, type Tile } from '../../core/tiles.ts';
import { leafHash, EMPTY_ROOT } from '../../core/hash.ts';
import { ed25519Signer, formatVerifierKey, signNote, SIG_TYPE_ED25519, type Signer } from '../../core/note.ts';
import { formatCheckpoint } from '../../core/checkpoint.ts';
import { completeSubtrees, hashRanges } from '../../core/merkle.ts';
import { nodeHashFromTiles } from '../../core/tiles.ts';
import { planSubtreeConsistencyProof, packageCount, packageRange, formatAddEntriesHeader, formatEntryPackage } from '../../core/tlog-mirror.ts';
import type { Hash } from '../../core/types.ts';

export class MemoryLog {
  readonly origin: string;
  readonly signer: Signer;
  readonly vkey: string;
  readonly entries: Buffer[] = [];
  private readonly tiles = new Map<string, Buffer>();
  root: Hash = Buffer.from(EMPTY_ROOT);
  /** Rewrites what tile() serves (tests of a lying log). */
  tamper?: (tile: Tile, data: Buffer) => Buffer;

  constructor(origin = 'example.test/memory-log', keyLabel = origin) {
    this.origin = origin;
    this.signer = ed25519Signer(origin, createHash('sha256').update(`log key ${keyLabel}`).digest());
    this.vkey = formatVerifierKey(origin, SIG_TYPE_ED25519, this.signer.publicKey);
  }

  get size(): number {
    return this.entries.length;
  }

  append(n: number, make = (i: number) => Buffer.from(`entry ${i} `.repeat(1 + (i % 7)))): void {
    const fresh = Array.from({ length: n }, (_, k) => make(this.size + k));
    const r = integrate(this.size, (t) => this.tiles.get(`${t.level}/${t.index}`)!.subarray(0, t.width * 32), fresh.map((e) => leafHash(e)));
    for (const { tile, data } of r.tiles) this.tiles.set(`${tile.level}/${tile.index}`, data);
    this.entries.push(...fresh);
    this.root = r.rootHash;
  }

  checkpointText(size = this.size): string {
    return formatCheckpoint({ origin: this.origin, treeSize: size, rootHash: size === this.size ? this.root : this.rootAt(size), extensions: [] });
  }

  signedCheckpoint(size = this.size, extra: Signer[] = []): string {
    return signNote(this.checkpointText(size), [this.signer, ...extra]);
  }

  rootAt(size: number): Hash {
    if (size === 0) return Buffer.from(EMPTY_ROOT);
    return hashRanges([{ start: 0, end: size, nodes: completeSubtrees(0, size) }], (n) => nodeHashFromTiles(n, this.size, (t) => this.rawTile(t)))[0]!;
  }

  rawTile(t: Tile): Buffer {
    if (t.level < 0) return formatEntryBundle(this.entries.slice(t.index * TILE_WIDTH, t.index * TILE_WIDTH + t.width));
    const b = this.tiles.get(`${t.level}/${t.index}`);
    if (b === undefined || b.length < t.width * 32) throw Object.assign(new Error(`no tile ${formatTilePath(t)}`), { code: 'ENOTILE' });
    return b.subarray(0, t.width * 32);
  }

  /** A TileSource + checkpoint (the LogSource of mirror pull mode). */
  source(): { checkpoint(): Promise<string>; tile(t: Tile): Promise<Buffer> } {
    return {
      checkpoint: async () => this.signedCheckpoint(),
      tile: async (t: Tile) => {
        const width = tileWidth(Math.max(t.level, 0), t.index, this.size);
        if (t.width > width) throw new Error(`tile ${formatTilePath(t)} is beyond the tree`);
        const data = this.rawTile(t);
        return this.tamper ? this.tamper(t, data) : data;
      },
    };
  }

  /** The subtree consistency proof of [start, end) in the tree of `size`. */
  subtreeProof(start: number, end: number, size = this.size): Hash[] {
    return hashRanges(planSubtreeConsistencyProof(start, end, size), (n) => nodeHashFromTiles(n, this.size, (t) => this.rawTile(t)));
  }

  /** An add-entries body for [uploadStart, uploadEnd) (packages `from`…`to` of the canonical sequence). */
  addEntriesBody(uploadStart: number, uploadEnd: number, opts: { from?: number; to?: number; ticket?: Buffer } = {}): Buffer {
    const parts = [formatAddEntriesHeader({ origin: this.origin, uploadStart, uploadEnd, ticket: opts.ticket ?? Buffer.alloc(0) })];
    const count = packageCount(uploadStart, uploadEnd);
    for (let i = opts.from ?? 0; i < Math.min(count, opts.to ?? count); i++) {
      const r = packageRange(uploadStart, uploadEnd, i);
      parts.push(formatEntryPackage(this.entries.slice(r.start, r.end), this.subtreeProof(r.subtreeStart, r.end, uploadEnd)));
    }
    return Buffer.concat(parts);
  }
}

