/**
 * The index revision: the leaf of the index's output log that binds an input-log checkpoint to the map built from
 * exactly that log (docs/index-format.md, "Revision leaf"). Version 1, big-endian:
 *
 *   0x01 ‖ revision (8) ‖ len(origin) (1) ‖ input origin (1–255 bytes UTF-8) ‖ input tree size (8) ‖ input root (32) ‖ map root (32)
 *
 * `revision` is the leaf's own index in the output log (revision r is output-log leaf r), so a revision leaf
 * cannot be replayed at another position. The map holds the keys of input-log entries [0, input tree size).
 */
import type { Hash } from './types.ts';
import { fail } from './errors.ts';
import { decodeUtf8 } from './encoding.ts';
import { HASH_SIZE } from './hash.ts';

export const INDEX_REVISION_VERSION = 1;
/** Largest encoded revision leaf. */
export const MAX_INDEX_REVISION_SIZE = 1 + 8 + 1 + 255 + 8 + 32 + 32;

export interface IndexRevision {
  /** The leaf's index in the output log. */
  revision: number;
  inputOrigin: string;
  inputTreeSize: number;
  inputRootHash: Hash;
  mapRoot: Hash;
}

// The checkpoint origin line's rules: no control characters (C0, so no "\n"), encodable as UTF-8.
const BAD_ORIGIN = /[\u0000-\u001f]|\p{Cs}/u;

function checkFields(r: IndexRevision): Buffer {
  if (!Number.isSafeInteger(r.revision) || r.revision < 0) fail('malformed', 'revision must be a non-negative integer');
  if (!Number.isSafeInteger(r.inputTreeSize) || r.inputTreeSize < 0) fail('malformed', 'input tree size must be a non-negative integer');
  if (typeof r.inputOrigin !== 'string' || BAD_ORIGIN.test(r.inputOrigin)) fail('malformed', 'input origin must be a checkpoint origin line');
  const origin = Buffer.from(r.inputOrigin, 'utf8');
  if (origin.length < 1 || origin.length > 255) fail('malformed', 'input origin must be 1–255 bytes');
  for (const [h, what] of [[r.inputRootHash, 'input root hash'], [r.mapRoot, 'map root']] as const) {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) fail('malformed', `${what} must be 32 bytes`);
  }
  return origin;
}

export function formatIndexRevision(r: IndexRevision): Buffer {
  const origin = checkFields(r);
  const b = Buffer.alloc(1 + 8 + 1 + origin.length + 8 + 32 + 32);
  let off = 0;
  b[off++] = INDEX_REVISION_VERSION;
  b.writeBigUInt64BE(BigInt(r.revision), off);
  off += 8;
  b[off++] = origin.length;
  origin.copy(b, off);
  off += origin.length;
  b.writeBigUInt64BE(BigInt(r.inputTreeSize), off);
  off += 8;
  b.set(r.inputRootHash, off);
  b.set(r.mapRoot, off + 32);
  return b;
}

/** Strict parse (exact length, canonical). Throws 'malformed'. */
export function parseIndexRevision(bytes: Uint8Array): IndexRevision {
  if (!(bytes instanceof Uint8Array)) fail('malformed', 'revision leaf must be bytes');
  if (bytes.length > MAX_INDEX_REVISION_SIZE) fail('malformed', 'revision leaf is too long');
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 10) fail('malformed', 'revision leaf is truncated');
  if (b[0] !== INDEX_REVISION_VERSION) fail('malformed', `unsupported revision leaf version ${b[0]}`);
  const n = b[9]!;
  if (b.length !== 10 + n + 72) fail('malformed', 'revision leaf length does not match its origin length');
  const big = (off: number, what: string): number => {
    const v = b.readBigUInt64BE(off);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('malformed', `revision leaf ${what} is out of range`);
    return Number(v);
  };
  const r: IndexRevision = {
    revision: big(1, 'revision'),
    inputOrigin: decodeUtf8(b.subarray(10, 10 + n), 'input origin'),
    inputTreeSize: big(10 + n, 'input tree size'),
    inputRootHash: Buffer.from(b.subarray(18 + n, 50 + n)),
    mapRoot: Buffer.from(b.subarray(50 + n, 82 + n)),
  };
  if (!formatIndexRevision(r).equals(b)) fail('malformed', 'revision leaf is not canonical');
  return r;
}
