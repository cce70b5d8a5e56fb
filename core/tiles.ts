/**
 * C2SP tlog-tiles: tile coordinates, paths, widths, and reading Merkle nodes out of hash tiles.
 * Tile height is 8 (256 hashes per full tile). A hash tile at tile level L, index N holds the hashes of the
 * Merkle nodes at Merkle level 8·L with indices N·256 … N·256+width-1.
 * A partial tile never feeds the level above: tile level L+1 only holds hashes of FULL tiles of level L.
 */
import { hash as cryptoHash } from 'node:crypto';
import type { Hash } from './types.ts';
import type { NodeId } from './merkle.ts';
import { fail } from './errors.ts';
import { HASH_SIZE } from './hash.ts';

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
/** The highest tile level a path may name (C2SP: 0…63). */
export const MAX_TILE_LEVEL = 63;
/** The most entries an entry bundle can hold, and the longest entry (2-byte length prefix). */
export const MAX_BUNDLE_ENTRIES = TILE_WIDTH;
export const MAX_ENTRY_SIZE = 0xffff;

/** A hash tile (level ≥ 0) or, with level = -1, an entry bundle. width is 1…256 (256 = full). */
export interface Tile {
  level: number;
  index: number;
  width: number;
}

const isSafeCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

function checkTile(tile: Tile): void {
  if (
    tile === null ||
    typeof tile !== 'object' ||
    !Number.isInteger(tile.level) ||
    tile.level < -1 ||
    tile.level > MAX_TILE_LEVEL ||
    !isSafeCount(tile.index) ||
    !Number.isInteger(tile.width) ||
    tile.width < 1 ||
    tile.width > TILE_WIDTH
  ) {
    fail('out_of_range', 'not a valid tile');
  }
}

/** `<N>` of a tile path: zero-padded 3-digit groups, `x` before every group but the last (1234067 → x001/x234/067). */
export function formatTileIndex(index: number): string {
  if (!isSafeCount(index)) fail('out_of_range', `tile index ${index} is not a non-negative safe integer`);
  let digits = String(index);
  digits = '0'.repeat((3 - (digits.length % 3)) % 3) + digits;
  const groups: string[] = [];
  for (let i = 0; i < digits.length; i += 3) groups.push(digits.slice(i, i + 3));
  return groups.map((g, i) => (i < groups.length - 1 ? 'x' + g : g)).join('/');
}

/** `tile/<L>/<N>[.p/<W>]` (or `tile/entries/<N>[.p/<W>]` when level = -1); N in x-prefixed 3-digit groups. Throws 'out_of_range' for an invalid tile. */
export function formatTilePath(tile: Tile): string {
  checkTile(tile);
  const level = tile.level === -1 ? 'entries' : String(tile.level);
  const suffix = tile.width === TILE_WIDTH ? '' : `.p/${tile.width}`;
  return `tile/${level}/${formatTileIndex(tile.index)}${suffix}`;
}

const TILE_PATH = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/){0,5}[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/** Strict inverse of formatTilePath (path without a leading slash). Throws 'malformed' (and only PkglogError). */
export function parseTilePath(path: string): Tile {
  if (typeof path !== 'string' || path.length > 64) fail('malformed', 'not a tile path');
  const m = TILE_PATH.exec(path);
  if (m === null) fail('malformed', 'not a tile path');
  const level = m[1] === 'entries' ? -1 : Number(m[1]);
  if (level > MAX_TILE_LEVEL) fail('malformed', 'tile level is above 63');
  let index = 0;
  for (const group of m[2]!.split('/')) {
    const g = Number(group.startsWith('x') ? group.slice(1) : group);
    if (index > (Number.MAX_SAFE_INTEGER - g) / 1000) fail('malformed', 'tile index is too large');
    index = index * 1000 + g;
  }
  let width = TILE_WIDTH;
  if (m[3] !== undefined) {
    width = Number(m[3]);
    if (width >= TILE_WIDTH) fail('malformed', 'partial tile width must be 1…255');
  }
  const tile: Tile = { level, index, width };
  // Canonical form only (rejects e.g. x000/005 for 005).
  if (formatTilePath(tile) !== path) fail('malformed', 'tile path is not canonical');
  return tile;
}

/**
 * Width of tile (level, index) in a tree of `treeSize` leaves: 256 if full, 1…255 if partial, 0 if it does not exist yet.
 * That is floor(treeSize / 256^level) − index·256, clamped to 0…256. Level -1 (entry bundles) is sized like level 0.
 * Throws 'out_of_range' for a level outside -1…63 or a non-safe index/size.
 */
export function tileWidth(level: number, index: number, treeSize: number): number {
  if (!Number.isInteger(level) || level < -1 || level > MAX_TILE_LEVEL || !isSafeCount(index) || !isSafeCount(treeSize)) {
    fail('out_of_range', 'bad tile coordinates or tree size');
  }
  const count = Math.floor(treeSize / TILE_WIDTH ** Math.max(level, 0)); // hashes at Merkle level 8·level
  const w = count - index * TILE_WIDTH;
  return w <= 0 ? 0 : Math.min(w, TILE_WIDTH);
}

/** Where a node lives: its tile (at the width of `treeSize`) and the run of `count` bottom-row hashes starting at `offset` whose fold is the node. */
export interface NodeLocation {
  tile: Tile;
  offset: number;
  count: number;
}

/**
 * The tile holding `node` in a tree of `treeSize`: tile level floor(level/8); a node at Merkle level 8·L + r (r > 0)
 * sits r rows above the tile's bottom row and is the hash of 2^r consecutive bottom-row hashes.
 * Throws 'out_of_range' unless the node is a complete subtree of the tree of `treeSize`.
 */
export function tileForNode(node: NodeId, treeSize: number): NodeLocation {
  if (
    node === null ||
    typeof node !== 'object' ||
    !Number.isInteger(node.level) ||
    node.level < 0 ||
    node.level > 8 * MAX_TILE_LEVEL + 7 ||
    !isSafeCount(node.index) ||
    !isSafeCount(treeSize) ||
    (node.index + 1) * 2 ** node.level > treeSize
  ) {
    fail('out_of_range', `node ${node?.level}/${node?.index} is not in a tree of size ${treeSize}`);
  }
  const level = Math.floor(node.level / TILE_HEIGHT);
  const row = node.level - level * TILE_HEIGHT;
  const count = 2 ** row;
  const first = node.index * count; // index of the first bottom-row hash (Merkle level 8·level)
  const index = Math.floor(first / TILE_WIDTH);
  const width = tileWidth(level, index, treeSize);
  return { tile: { level, index, width }, offset: first - index * TILE_WIDTH, count };
}

/** The tiles (at the widths of `treeSize`) that hold the given nodes, deduplicated. Level -1 is never returned. */
export function tilesForNodes(nodes: NodeId[], treeSize: number): Tile[] {
  const seen = new Set<string>();
  const out: Tile[] = [];
  for (const node of nodes) {
    const { tile } = tileForNode(node, treeSize);
    const key = `${tile.level}/${tile.index}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(tile);
  }
  return out;
}

/**
 * The complete nodes of the TILE_HEIGHT−1 levels inside a tile, above its row of `width` hashes: levels[r] (1 ≤ r < 8)
 * holds floor(width / 2^r) hashes (levels[0] is the row itself). A full tile's root (level 8) is nodeHash(levels[7][0],
 * levels[7][1]).
 */
export function innerLevels(data: Uint8Array, width: number): Buffer[] {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH || data.length < width * HASH_SIZE) {
    fail('internal', `innerLevels: bad tile of ${data.length / HASH_SIZE} hashes, width ${width}`);
  }
  const row = Buffer.from(data.buffer, data.byteOffset, width * HASH_SIZE);
  const out: Buffer[] = [row];
  const scratch = Buffer.allocUnsafe(1 + 2 * HASH_SIZE);
  scratch[0] = 0x01;
  for (let r = 1; r < TILE_HEIGHT; r++) {
    const below = out[r - 1]!;
    const n = Math.floor(below.length / HASH_SIZE / 2);
    const level = Buffer.allocUnsafe(n * HASH_SIZE);
    for (let i = 0; i < n; i++) {
      below.copy(scratch, 1, 2 * i * HASH_SIZE, (2 * i + 2) * HASH_SIZE);
      level.set(cryptoHash('sha256', scratch, 'buffer') as Buffer, i * HASH_SIZE);
    }
    out.push(level);
  }
  return out;
}

/** Bytes of a full tile's stored inner levels 1…7 (128 + 64 + … + 2 = 254 hashes). */
export const FULL_TILE_INNER_SIZE = (TILE_WIDTH - 2) * HASH_SIZE;

/** Splits the stored inner levels of a full tile (levels 1…7 concatenated) into innerLevels() form. */
export function splitInnerLevels(row: Buffer, inner: Buffer): Buffer[] {
  if (row.length !== TILE_WIDTH * HASH_SIZE || inner.length !== FULL_TILE_INNER_SIZE) fail('internal', 'stored inner levels have the wrong size');
  const out: Buffer[] = [row];
  let at = 0;
  for (let n = TILE_WIDTH / 2; n >= 2; n /= 2) {
    out.push(inner.subarray(at, at + n * HASH_SIZE));
    at += n * HASH_SIZE;
  }
  return out;
}

/**
 * The hash of a perfect subtree whose `count` (a power of two, ≥ 1) leaves are the consecutive 32-byte hashes
 * data[first·32 …]: the RFC 6962 fold with node = SHA-256(0x01 ‖ left ‖ right). Returns a fresh Buffer.
 */
export function hashPerfectSubtree(data: Uint8Array, first: number, count: number): Hash {
  const start = first * HASH_SIZE;
  if (!Number.isInteger(first) || first < 0 || !(count >= 1 && count <= 2 ** 30 && (count & (count - 1)) === 0) || start + count * HASH_SIZE > data.length) {
    fail('internal', `hashPerfectSubtree: bad run ${first}+${count} of ${data.length / HASH_SIZE} hashes`);
  }
  if (count === 1) return Buffer.from(data.subarray(start, start + HASH_SIZE));
  const src = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const scratch = Buffer.allocUnsafe(1 + 2 * HASH_SIZE);
  scratch[0] = 0x01;
  let n = count / 2;
  const work = Buffer.allocUnsafe(n * HASH_SIZE);
  for (let i = 0; i < n; i++) {
    src.copy(scratch, 1, start + 2 * i * HASH_SIZE, start + (2 * i + 2) * HASH_SIZE);
    cryptoHash('sha256', scratch, 'buffer').copy(work, i * HASH_SIZE);
  }
  while (n > 1) {
    n /= 2;
    for (let i = 0; i < n; i++) {
      work.copy(scratch, 1, 2 * i * HASH_SIZE, (2 * i + 2) * HASH_SIZE);
      cryptoHash('sha256', scratch, 'buffer').copy(work, i * HASH_SIZE);
    }
  }
  return Buffer.from(work.subarray(0, HASH_SIZE));
}

/**
 * The hash of `node` computed from tile data (`readTile` returns the bytes of a tile returned by tilesForNodes,
 * width·32 bytes). Nodes above the tile's bottom row are rehashed from it.
 * Throws 'out_of_range' for a node not in the tree, 'malformed' when readTile's data has the wrong length.
 */
export function nodeHashFromTiles(node: NodeId, treeSize: number, readTile: (tile: Tile) => Buffer): Hash {
  const { tile, offset, count } = tileForNode(node, treeSize);
  const data = readTile(tile);
  if (!(data instanceof Uint8Array) || data.length !== tile.width * HASH_SIZE) {
    fail('malformed', `${formatTilePath(tile)} must be ${tile.width * HASH_SIZE} bytes`);
  }
  return hashPerfectSubtree(data, offset, count);
}

/** Entry bundle: each entry as a 2-byte big-endian length then its bytes. 1…256 entries of at most 65535 bytes, else 'too_large'/'malformed'. */
export function formatEntryBundle(entries: Uint8Array[]): Buffer {
  if (!Array.isArray(entries) || entries.length === 0) fail('malformed', 'an entry bundle holds at least one entry');
  if (entries.length > MAX_BUNDLE_ENTRIES) fail('too_large', `an entry bundle holds at most ${MAX_BUNDLE_ENTRIES} entries`);
  let total = 0;
  for (const e of entries) {
    if (!(e instanceof Uint8Array)) fail('malformed', 'entry is not bytes');
    if (e.length > MAX_ENTRY_SIZE) fail('too_large', `entry of ${e.length} bytes does not fit a 2-byte length`);
    total += 2 + e.length;
  }
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const e of entries) {
    out.writeUInt16BE(e.length, pos);
    out.set(e, pos + 2);
    pos += 2 + e.length;
  }
  return out;
}

/** Strict inverse of formatEntryBundle: 1…256 entries, no truncation, no trailing bytes. Throws 'malformed'. */
export function parseEntryBundle(data: Uint8Array): Buffer[] {
  if (!(data instanceof Uint8Array)) fail('malformed', 'entry bundle is not bytes');
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const entries: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (entries.length === MAX_BUNDLE_ENTRIES) fail('malformed', `entry bundle has more than ${MAX_BUNDLE_ENTRIES} entries`);
    if (pos + 2 > buf.length) fail('malformed', 'entry bundle is truncated (length prefix)');
    const len = buf.readUInt16BE(pos);
    if (pos + 2 + len > buf.length) fail('malformed', 'entry bundle is truncated (entry)');
    entries.push(Buffer.from(buf.subarray(pos + 2, pos + 2 + len)));
    pos += 2 + len;
  }
  if (entries.length === 0) fail('malformed', 'entry bundle is empty');
  return entries;
}
