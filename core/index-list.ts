/**
 * The value of a map key: the ordered list of input-log indices of its entries (docs/index-format.md, "Values").
 *
 * The list is cut into pages of INDEX_PAGE_SIZE indices (the last one may be shorter); page p holds list positions
 * [64·p, 64·p + 64). A page's bytes are its indices as 8-byte big-endian integers; the list root is the RFC 6962
 * Merkle tree hash over the pages (leaf hash SHA-256(0x00 ‖ page bytes)). The map value is
 *
 *   SHA-256("pkglog/index/v1/value\0" ‖ count as 8 bytes big-endian ‖ list root)
 *
 * so a bundle proves one page with an RFC 6962 inclusion proof of O(log(count/64)) hashes, whatever the count.
 * Appending touches only the last page and the tree's right edge: IndexListState (count, the hashes of the complete
 * subtrees over the full pages, the last partial page) is all a store keeps per key to update the value in O(log n).
 */
import { hash as oneShot } from 'node:crypto';
import type { Hash } from './types.ts';
import { fail } from './errors.ts';
import { HASH_SIZE, leafHash, nodeHash } from './hash.ts';
import { hashRanges, planInclusionProof, rootFromInclusionProof, type NodeId } from './merkle.ts';

export const INDEX_PAGE_SIZE = 64;
const VALUE_PREFIX = Buffer.from('pkglog/index/v1/value\0', 'ascii');

function checkIndex(i: unknown): asserts i is number {
  if (typeof i !== 'number' || !Number.isSafeInteger(i) || i < 0) fail('malformed', 'an input-log index must be a non-negative integer');
}

function checkCount(count: unknown): asserts count is number {
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) fail('malformed', 'list count must be a non-negative integer');
}

/** A page's bytes: its indices as 8-byte big-endian integers. */
export function encodeIndexPage(indices: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(8 * indices.length);
  indices.forEach((i, n) => {
    checkIndex(i);
    b.writeBigUInt64BE(BigInt(i), 8 * n);
  });
  return b;
}

/** A page's leaf hash in the list tree. */
export function indexPageHash(indices: readonly number[]): Hash {
  return leafHash(encodeIndexPage(indices));
}

/** The map value of a list of `count` (> 0) indices with list root `listRoot`. */
export function indexValue(count: number, listRoot: Uint8Array): Hash {
  checkCount(count);
  if (count === 0) fail('malformed', 'an empty list has no map value (the key is absent)');
  if (!(listRoot instanceof Uint8Array) || listRoot.length !== HASH_SIZE) fail('malformed', 'list root must be 32 bytes');
  const b = Buffer.allocUnsafe(VALUE_PREFIX.length + 8 + HASH_SIZE);
  VALUE_PREFIX.copy(b, 0);
  b.writeBigUInt64BE(BigInt(count), VALUE_PREFIX.length);
  b.set(listRoot, VALUE_PREFIX.length + 8);
  return oneShot('sha256', b, 'buffer') as Hash;
}

/** Number of pages of a list of `count` indices. */
export function indexPageCount(count: number): number {
  checkCount(count);
  return Math.ceil(count / INDEX_PAGE_SIZE);
}

/** The list positions [start, end) of page `page`. Throws 'out_of_range' past the last page. */
export function indexPageRange(count: number, page: number): { start: number; end: number } {
  const pages = indexPageCount(count);
  if (!Number.isSafeInteger(page) || page < 0 || page >= pages) fail('out_of_range', `page ${page} is outside a list of ${count} entries (${pages} pages)`);
  const start = page * INDEX_PAGE_SIZE;
  return { start, end: Math.min(count, start + INDEX_PAGE_SIZE) };
}

/** What a store keeps per key to append in O(log n): see the module comment. */
export interface IndexListState {
  count: number;
  /** Hashes of the complete subtrees over the full pages, left to right (one per set bit of ⌊count/64⌋, largest first). */
  fullPages: Hash[];
  /** The indices of the last, partial page (fewer than 64). */
  tail: number[];
  /** The last index appended (−1 for an empty list): indices must increase. */
  last: number;
}

export const EMPTY_INDEX_LIST: IndexListState = Object.freeze({ count: 0, fullPages: [], tail: [], last: -1 }) as IndexListState;

function popcount(n: number): number {
  let c = 0;
  while (n > 0) {
    c += n % 2;
    n = Math.floor(n / 2);
  }
  return c;
}

/** The state after appending `indices` (each larger than the last). Pure: returns a new state. Throws 'malformed'. */
export function appendIndexList(state: IndexListState, indices: readonly number[]): IndexListState {
  let { count, last } = state;
  const fullPages = [...state.fullPages];
  let tail = [...state.tail];
  for (const i of indices) {
    checkIndex(i);
    if (i <= last) fail('malformed', `index ${i} does not follow ${last}: a list's indices increase`);
    last = i;
    tail.push(i);
    count++;
    if (tail.length === INDEX_PAGE_SIZE) {
      // Push the page, then merge equal-sized subtrees on the right edge (a binary counter over full pages).
      fullPages.push(indexPageHash(tail));
      tail = [];
      let full = count / INDEX_PAGE_SIZE;
      while (full % 2 === 0) {
        const right = fullPages.pop()!;
        const left = fullPages.pop()!;
        fullPages.push(nodeHash(left, right));
        full /= 2;
      }
    }
  }
  return { count, fullPages, tail, last };
}

/** The RFC 6962 root over the pages (count > 0): the right-to-left fold of the full-page subtrees and the tail page. */
export function indexListRoot(state: IndexListState): Hash {
  if (state.count === 0) fail('malformed', 'an empty list has no root');
  const hashes = state.tail.length > 0 ? [...state.fullPages, indexPageHash(state.tail)] : state.fullPages;
  let h = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) h = nodeHash(hashes[i]!, h);
  return h;
}

/** The map value of a non-empty list. */
export function indexListValue(state: IndexListState): Hash {
  return indexValue(state.count, indexListRoot(state));
}

/**
 * Stored form of an IndexListState: count (8 bytes BE), last index (8 bytes BE), tail length (1 byte), the tail
 * indices (8 bytes BE each), then the full-page subtree hashes (popcount(⌊count/64⌋) × 32 bytes).
 */
export function encodeIndexListState(s: IndexListState): Buffer {
  const head = Buffer.alloc(17);
  head.writeBigUInt64BE(BigInt(s.count), 0);
  head.writeBigUInt64BE(BigInt(s.last + 1), 8); // +1 so an empty list stores 0
  head[16] = s.tail.length;
  return Buffer.concat([head, encodeIndexPage(s.tail), ...s.fullPages]);
}

export function decodeIndexListState(bytes: Uint8Array): IndexListState {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 17) fail('malformed', 'index list state is truncated');
  const count = Number(b.readBigUInt64BE(0));
  const last = Number(b.readBigUInt64BE(8)) - 1;
  const t = b[16]!;
  checkCount(count);
  const full = Math.floor(count / INDEX_PAGE_SIZE);
  if (t !== count - full * INDEX_PAGE_SIZE) fail('malformed', 'index list state tail length does not match its count');
  const n = popcount(full);
  if (b.length !== 17 + 8 * t + HASH_SIZE * n) fail('malformed', 'index list state length does not match its count');
  const tail: number[] = [];
  for (let i = 0; i < t; i++) tail.push(Number(b.readBigUInt64BE(17 + 8 * i)));
  const fullPages: Hash[] = [];
  for (let i = 0; i < n; i++) fullPages.push(Buffer.from(b.subarray(17 + 8 * t + HASH_SIZE * i, 17 + 8 * t + HASH_SIZE * (i + 1))));
  return { count, fullPages, tail, last };
}

/**
 * The inclusion proof of page `page` in the list tree of `count` indices, `pageHash(p)` answering the leaf hash of
 * page p (a store can cache full pages' hashes; they never change). O(pages) hashing.
 */
export function proveIndexPage(count: number, page: number, pageHash: (p: number) => Hash): Hash[] {
  indexPageRange(count, page);
  const pages = indexPageCount(count);
  const memo = new Map<string, Hash>();
  const subtree = (n: NodeId): Hash => {
    if (n.level === 0) return pageHash(n.index);
    const k = `${n.level}/${n.index}`;
    let h = memo.get(k);
    if (h === undefined) {
      h = nodeHash(subtree({ level: n.level - 1, index: 2 * n.index }), subtree({ level: n.level - 1, index: 2 * n.index + 1 }));
      memo.set(k, h);
    }
    return h;
  };
  return hashRanges(planInclusionProof(page, pages), subtree);
}

/**
 * Throws 'invalid_proof' unless `indices` are page `page` of a list of `count` indices (right length, increasing)
 * whose list tree the inclusion `proof` ties them to; returns that list's map value.
 */
export function verifyIndexPage(count: number, page: number, indices: readonly number[], proof: Hash[]): Hash {
  checkCount(count);
  if (count === 0) fail('invalid_proof', 'an empty list has no pages');
  const { start, end } = indexPageRange(count, page);
  if (indices.length !== end - start) {
    fail('invalid_proof', `page ${page} of a list of ${count} entries must hold ${end - start} entries, the bundle has ${indices.length}`);
  }
  for (let i = 0; i < indices.length; i++) {
    checkIndex(indices[i]);
    if (i > 0 && indices[i]! <= indices[i - 1]!) fail('invalid_proof', 'page indices must increase');
  }
  const root = rootFromInclusionProof(page, indexPageCount(count), indexPageHash(indices), proof);
  return indexValue(count, root);
}
