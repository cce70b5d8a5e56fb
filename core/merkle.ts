/**
 * RFC 6962 / RFC 9162 Merkle tree proofs, planned apart from fetching (transparency-dev/merkle `proof/` style):
 * plan which complete-subtree nodes a proof needs, let the caller read them (from tiles, a DB, HTTP), then rehash.
 *
 * A NodeId {level, index} names the complete subtree of 2^level leaves [index·2^level, (index+1)·2^level).
 * All sizes and indices are JS numbers (safe integers, < 2^53); arithmetic here never uses 32-bit bit operators.
 */
import type { Hash } from './types.ts';
import { fail } from './errors.ts';
import { nodeHash, HASH_SIZE } from './hash.ts';

export interface NodeId {
  level: number;
  index: number;
}

/**
 * One hash of a proof: the hash of leaves [start, end). When the range is not one complete subtree
 * (the right edge of a tree), `nodes` lists its maximal complete subtrees left to right; the range hash
 * is their right-to-left fold with nodeHash.
 */
export interface ProofRange {
  start: number;
  end: number;
  nodes: NodeId[];
}

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** The largest power of two strictly less than n (n ≥ 2): RFC 6962's split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A stable string key for a node ("level/index"), for maps and deduplication. */
export function nodeKey(node: NodeId): string {
  return `${node.level}/${node.index}`;
}

/**
 * The maximal complete subtrees covering [start, end), left to right (the right edge of a tree of size `end`).
 * Greedy: at each step the largest aligned subtree starting at `start` that fits. When [start, end) is an
 * RFC 6962 subtree (start a multiple of a power of two ≥ end − start, as every proof range is), the right-to-left
 * fold of these nodes is the RFC 6962 hash of the range. Throws 'out_of_range' unless 0 ≤ start ≤ end.
 */
export function completeSubtrees(start: number, end: number): NodeId[] {
  if (!isSize(start) || !isSize(end) || start > end) fail('out_of_range', `bad leaf range [${start}, ${end})`);
  const nodes: NodeId[] = [];
  while (start < end) {
    let size = 1;
    let level = 0;
    while (start % (size * 2) === 0 && start + size * 2 <= end) {
      size *= 2;
      level++;
    }
    nodes.push({ level, index: start / size });
    start += size;
  }
  return nodes;
}

function range(start: number, end: number): ProofRange {
  return { start, end, nodes: completeSubtrees(start, end) };
}

/** The ranges of an RFC 6962 inclusion proof for `index` in a tree of `treeSize`, leaf's sibling first. Throws 'out_of_range'. */
export function planInclusionProof(index: number, treeSize: number): ProofRange[] {
  if (!isSize(index) || !isSize(treeSize) || index >= treeSize) {
    fail('out_of_range', `leaf index ${index} is outside a tree of size ${treeSize}`);
  }
  // RFC 6962 §2.1.1 PATH(m, D[lo:hi]), unrolled top-down; the proof lists the siblings bottom-up.
  const ranges: ProofRange[] = [];
  let lo = 0;
  let hi = treeSize;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      ranges.push(range(lo + k, hi));
      hi = lo + k;
    } else {
      ranges.push(range(lo, lo + k));
      lo += k;
    }
  }
  return ranges.reverse();
}

/** The ranges of an RFC 6962 consistency proof from `oldSize` to `newSize`. 0 < oldSize ≤ newSize, else 'out_of_range'. Empty when equal. */
export function planConsistencyProof(oldSize: number, newSize: number): ProofRange[] {
  if (!isSize(oldSize) || !isSize(newSize) || oldSize === 0 || oldSize > newSize) {
    fail('out_of_range', `no consistency proof from size ${oldSize} to size ${newSize}`);
  }
  if (oldSize === newSize) return [];
  // RFC 6962 §2.1.2 SUBPROOF(m, D[lo:hi], b), unrolled top-down; m is relative to lo.
  const ranges: ProofRange[] = [];
  let lo = 0;
  let hi = newSize;
  let wholeOldTree = true; // b
  while (oldSize !== hi) {
    const k = splitPoint(hi - lo);
    if (oldSize - lo <= k) {
      ranges.push(range(lo + k, hi));
      hi = lo + k;
    } else {
      ranges.push(range(lo, lo + k));
      lo += k;
      wholeOldTree = false;
    }
  }
  if (!wholeOldTree) ranges.push(range(lo, hi));
  return ranges.reverse();
}

/** The nodes whose fold is the root of a tree of `treeSize` (> 0). Throws 'out_of_range' for size 0. */
export function planRoot(treeSize: number): ProofRange {
  if (!isSize(treeSize) || treeSize === 0) fail('out_of_range', `no root to plan for tree size ${treeSize}`);
  return range(0, treeSize);
}

/** Every distinct node a set of ranges needs (to fetch them in one pass), in first-seen order. */
export function nodesOf(ranges: ProofRange[]): NodeId[] {
  const seen = new Set<string>();
  const out: NodeId[] = [];
  for (const r of ranges) {
    for (const n of r.nodes) {
      const key = nodeKey(n);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(n);
    }
  }
  return out;
}

/** Rehash: each range's hash from its nodes' hashes, `getNode` answering for every node in nodesOf(ranges). */
export function hashRanges(ranges: ProofRange[], getNode: (node: NodeId) => Hash): Hash[] {
  return ranges.map((r) => {
    if (r.nodes.length === 0) fail('internal', `empty proof range [${r.start}, ${r.end})`);
    let h = getNode(r.nodes[r.nodes.length - 1]!);
    for (let i = r.nodes.length - 2; i >= 0; i--) h = nodeHash(getNode(r.nodes[i]!), h);
    return h;
  });
}

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_SIZE;
}

/** No RFC 6962 proof for a tree of < 2^53 leaves has more than 54 hashes; longer input is rejected before any work. */
export const MAX_PROOF_LENGTH = 64;

function checkHashes(what: string, hashes: unknown[]): void {
  if (!Array.isArray(hashes)) fail('invalid_proof', `${what} is not a list of hashes`);
  if (hashes.length > MAX_PROOF_LENGTH) fail('invalid_proof', `${what} has more than ${MAX_PROOF_LENGTH} hashes`);
  for (const h of hashes) if (!isHash(h)) fail('invalid_proof', `${what} contains a value that is not a 32-byte hash`);
}

function equalHashes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

const odd = (x: number): boolean => x % 2 === 1;
function isPowerOfTwo(n: number): boolean {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}
const half = (x: number): number => Math.floor(x / 2);

/**
 * RFC 9162 §2.1.3.2: the root implied by an inclusion proof. Throws 'invalid_proof' (wrong length, or a
 * proof/leaf value that is not a 32-byte hash) or 'out_of_range' (index ≥ treeSize, non-integer arguments).
 */
export function rootFromInclusionProof(index: number, treeSize: number, leafHash: Hash, proof: Hash[]): Hash {
  if (!isSize(index) || !isSize(treeSize) || index >= treeSize) {
    fail('out_of_range', `leaf index ${index} is outside a tree of size ${treeSize}`);
  }
  if (!isHash(leafHash)) fail('invalid_proof', 'leaf hash is not a 32-byte hash');
  checkHashes('inclusion proof', proof);
  let fn = index;
  let sn = treeSize - 1;
  let r: Hash = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) fail('invalid_proof', 'inclusion proof is too long');
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) fail('invalid_proof', 'inclusion proof is too short');
  return r;
}

/** Throws 'invalid_proof' unless `proof` proves `leafHash` at `index` in the tree of `treeSize` with `rootHash`. */
export function verifyInclusion(index: number, treeSize: number, leafHash: Hash, proof: Hash[], rootHash: Hash): void {
  const computed = rootFromInclusionProof(index, treeSize, leafHash, proof);
  if (!isHash(rootHash) || !equalHashes(computed, rootHash)) {
    fail('invalid_proof', `inclusion proof for leaf ${index} does not match the root of tree size ${treeSize}`);
  }
}

/**
 * RFC 9162 §2.1.4.2. Throws 'invalid_proof' unless the proof shows the tree (oldSize, oldRoot) is a prefix of (newSize, newRoot).
 * 'out_of_range' when oldSize > newSize or a size is not a non-negative safe integer.
 * - oldSize == newSize: the proof must be empty and the roots equal.
 * - oldSize == 0 (< newSize): the proof must be empty; oldRoot is NOT checked here (every tree extends the empty tree) —
 *   callers that hold a size-0 checkpoint must check its root is EMPTY_ROOT themselves.
 */
export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Hash, newRoot: Hash, proof: Hash[]): void {
  if (!isSize(oldSize) || !isSize(newSize) || oldSize > newSize) {
    fail('out_of_range', `no consistency proof from size ${oldSize} to size ${newSize}`);
  }
  checkHashes('consistency proof', proof);
  if (oldSize === newSize) {
    if (proof.length !== 0) fail('invalid_proof', 'consistency proof between equal sizes must be empty');
    if (!isHash(oldRoot) || !isHash(newRoot) || !equalHashes(oldRoot, newRoot)) {
      fail('invalid_proof', `different roots for the same tree size ${oldSize}`);
    }
    return;
  }
  if (oldSize === 0) {
    if (proof.length !== 0) fail('invalid_proof', 'consistency proof from the empty tree must be empty');
    return;
  }
  if (!isHash(oldRoot) || !isHash(newRoot)) fail('invalid_proof', 'root is not a 32-byte hash');
  if (proof.length === 0) fail('invalid_proof', 'consistency proof is empty');
  // Step 2: if oldSize is an exact power of two, the old root is the first proof node.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  const { oldRoot: fr, newRoot: sr } = rootsFromConsistencyPath(oldSize, newSize, path);
  if (!equalHashes(fr, oldRoot)) fail('invalid_proof', `consistency proof does not match the root of tree size ${oldSize}`);
  if (!equalHashes(sr, newRoot)) fail('invalid_proof', `consistency proof does not match the root of tree size ${newSize}`);
}

/**
 * RFC 9162 §2.1.4.2 steps 3–7: the roots of sizes oldSize and newSize (0 < oldSize < newSize) that a consistency path
 * implies, where the path is the proof with the old root prepended when oldSize is a power of two (step 2).
 * Throws 'invalid_proof' when the path has the wrong length. Fork evidence (core/evidence.ts) uses it directly.
 */
export function rootsFromConsistencyPath(oldSize: number, newSize: number, path: Hash[]): { oldRoot: Hash; newRoot: Hash } {
  if (path.length === 0) fail('invalid_proof', 'consistency proof is empty');
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Hash = Buffer.from(path[0]!);
  let sr: Hash = fr;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) fail('invalid_proof', 'consistency proof is too long');
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) fail('invalid_proof', 'consistency proof is too short');
  return { oldRoot: fr, newRoot: sr };
}
