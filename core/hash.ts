/** RFC 6962 / RFC 9162 hashing. One-shot SHA-256 (node:crypto `hash`) on the hot paths: no Hash object per call. */
import { createHash, hash as oneShot } from 'node:crypto';

export const HASH_SIZE = 32;

export function sha256(...parts: Uint8Array[]): Buffer {
  if (parts.length === 1) return oneShot('sha256', parts[0]!, 'buffer') as Buffer;
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Leaf hash: SHA-256(0x00 ‖ leaf). */
export function leafHash(leaf: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(1 + leaf.length);
  b[0] = 0x00;
  b.set(leaf, 1);
  return oneShot('sha256', b, 'buffer') as Buffer;
}

/** Interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(1 + left.length + right.length);
  b[0] = 0x01;
  b.set(left, 1);
  b.set(right, 1 + left.length);
  return oneShot('sha256', b, 'buffer') as Buffer;
}

/** Root of the empty tree: SHA-256 of zero bytes. */
/** sha256(origin) in lowercase hex: how a log is named in paths (witness URLs, client state directories). */
export function originHash(origin: string): string {
  return sha256(Buffer.from(origin, 'utf8')).toString('hex');
}

export const EMPTY_ROOT: Buffer = sha256(new Uint8Array(0));
