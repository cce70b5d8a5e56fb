/** RFC 6962 / RFC 9162 hashing. */
import { createHash } from 'node:crypto';

export const HASH_SIZE = 32;

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** Leaf hash: SHA-256(0x00 ‖ leaf). */
export function leafHash(leaf: Uint8Array): Buffer {
  return sha256(LEAF_PREFIX, leaf);
}

/** Interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(NODE_PREFIX, left, right);
}

/** Root of the empty tree: SHA-256 of zero bytes. */
export const EMPTY_ROOT: Buffer = sha256();
