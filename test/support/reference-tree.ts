/**
 * A deliberately naive RFC 6962 reference (§2.1, §2.1.1, §2.1.2), written straight from the RFC text:
 * MTH(D[n]), PATH(m, D[n]) and PROOF(m, D[n]) = SUBPROOF(m, D[n], true). Ranges D[lo:hi] are passed as indices
 * instead of slices; MTH results are memoised (the definition is unchanged) so tests can ask for many proofs.
 * Test-only: never import from production code.
 */
import { createCipheriv, createHash } from 'node:crypto';

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export const refLeafHash = (leaf: Uint8Array): Buffer => sha256(Buffer.from([0x00]), leaf);
export const refNodeHash = (l: Uint8Array, r: Uint8Array): Buffer => sha256(Buffer.from([0x01]), l, r);

/** The largest power of two smaller than n (n > 1). */
function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

export class ReferenceTree {
  /** Leaf hashes, i.e. MTH({d(i)}) = SHA-256(0x00 ‖ d(i)). */
  readonly leafHashes: Buffer[];
  private readonly memo = new Map<string, Buffer>();

  private constructor(leafHashes: Buffer[]) {
    this.leafHashes = leafHashes;
  }

  /** A tree over the entries D (hashes each as a leaf). */
  static fromEntries(entries: Uint8Array[]): ReferenceTree {
    return new ReferenceTree(entries.map(refLeafHash));
  }

  /** A tree whose leaf hashes are given directly. */
  static fromLeafHashes(hashes: Uint8Array[]): ReferenceTree {
    return new ReferenceTree(hashes.map((h) => Buffer.from(h)));
  }

  get size(): number {
    return this.leafHashes.length;
  }

  /** MTH(D[lo:hi]). */
  mth(lo: number, hi: number): Buffer {
    const n = hi - lo;
    if (n < 0 || hi > this.size) throw new Error(`bad range [${lo}, ${hi})`);
    // The hash of an empty list is the hash of an empty string: MTH({}) = SHA-256().
    if (n === 0) return sha256();
    // The hash of a list with one entry: MTH({d(0)}) = SHA-256(0x00 || d(0)).
    if (n === 1) return this.leafHashes[lo]!;
    const key = n >= 8 ? `${lo}:${hi}` : undefined; // small subtrees are cheaper to recompute than to memoise
    const cached = key === undefined ? undefined : this.memo.get(key);
    if (cached) return cached;
    // MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two < n.
    const split = k(n);
    const h = refNodeHash(this.mth(lo, lo + split), this.mth(lo + split, hi));
    if (key !== undefined) this.memo.set(key, h);
    return h;
  }

  /** The root of the first `n` leaves. */
  root(n: number = this.size): Buffer {
    return this.mth(0, n);
  }

  /** PATH(m, D[lo:hi]) — the audit path for leaf m (relative to lo). */
  path(m: number, lo: number, hi: number): Buffer[] {
    const n = hi - lo;
    if (m < 0 || m >= n) throw new Error('bad leaf');
    // PATH(0, {d(0)}) = {}
    if (n === 1) return [];
    const split = k(n);
    // m < k: PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
    if (m < split) return [...this.path(m, lo, lo + split), this.mth(lo + split, hi)];
    // m >= k: PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
    return [...this.path(m - split, lo + split, hi), this.mth(lo, lo + split)];
  }

  /** The RFC 6962 inclusion proof of leaf m in the tree of the first n leaves. */
  inclusionProof(m: number, n: number): Buffer[] {
    return this.path(m, 0, n);
  }

  /** SUBPROOF(m, D[lo:hi], b). */
  subproof(m: number, lo: number, hi: number, b: boolean): Buffer[] {
    const n = hi - lo;
    // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
    if (m === n) return b ? [] : [this.mth(lo, hi)];
    const split = k(n);
    // m <= k: SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
    if (m <= split) return [...this.subproof(m, lo, lo + split, b), this.mth(lo + split, hi)];
    // m > k: SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
    return [...this.subproof(m - split, lo + split, hi, false), this.mth(lo, lo + split)];
  }

  /** PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for 0 < m ≤ n. */
  consistencyProof(m: number, n: number): Buffer[] {
    if (m <= 0 || m > n || n > this.size) throw new Error('bad sizes');
    return this.subproof(m, 0, n, true);
  }
}

/** Helpers for a tree whose leaves are all the same hash: the hash of a perfect subtree depends only on its level. */
export function perfectHashes(leaf: Uint8Array, levels = 64): Buffer[] {
  const out: Buffer[] = [Buffer.from(leaf)];
  for (let i = 1; i < levels; i++) out.push(refNodeHash(out[i - 1]!, out[i - 1]!));
  return out;
}

/**
 * `n` distinct pseudo-random 32-byte values, reproducible from `seed` (AES-128-CTR keystream), for use as leaf hashes.
 * Much faster than hashing n inputs when tests need 10^5 leaves.
 */
export function pseudoRandomHashes(n: number, seed: number): Buffer[] {
  const key = createHash('sha256').update(`pkglog test seed ${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const stream = Buffer.concat([cipher.update(Buffer.alloc(32 * n)), cipher.final()]);
  return Array.from({ length: n }, (_, i) => stream.subarray(32 * i, 32 * i + 32));
}
