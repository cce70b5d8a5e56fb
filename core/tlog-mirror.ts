/**
 * C2SP tlog-mirror, the pure parts: subtrees and subtree consistency proofs (draft-ietf-plants-merkle-tree-certs-02,
 * "Subtrees" and "Subtree Consistency Proofs"), the add-entries request (header, canonical sequence of entry
 * packages aligned at multiples of 256, each package's bytes) and the `text/x.tlog.mirror-info` reply of 409 and 202.
 *
 * A subtree [start, end) is valid when 0 ≤ start < end and start is a multiple of BIT_CEIL(end − start). Its hash is
 * the RFC 6962 hash of leaves start…end−1 as a list of their own. A subtree consistency proof shows that the subtree
 * with a given hash sits at those positions in the tree of size n with a given root. Sizes are JS safe integers.
 */
import type { Hash } from './types.ts';
import { fail } from './errors.ts';
import { EMPTY_ROOT, HASH_SIZE, nodeHash } from './hash.ts';
import { completeSubtrees, splitPoint, MAX_PROOF_LENGTH, type ProofRange } from './merkle.ts';
import { decodeBase64, encodeBase64, parseDecimal, utf8 } from './encoding.ts';
import { TILE_WIDTH, MAX_ENTRY_SIZE } from './tiles.ts';

/** Content type of the 409 and 202 replies of add-entries. */
export const MIRROR_INFO_CONTENT_TYPE = 'text/x.tlog.mirror-info';
/** Most subtree consistency proof hashes in one package (the spec's num_hashes limit). */
export const MAX_PACKAGE_HASHES = 63;
/** Entries per entry package (and entry bundle). */
export const PACKAGE_WIDTH = TILE_WIDTH;
/** What a client SHOULD send in one add-entries request at most (the spec: 32 packages, 8192 entries). */
export const CLIENT_PACKAGES_PER_REQUEST = 32;

const isSize = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const odd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

/** The smallest power of two ≥ n (n ≥ 1). */
function bitCeil(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Is [start, end) a valid subtree (0 ≤ start < end, start a multiple of BIT_CEIL(end − start))? */
export function isValidSubtree(start: number, end: number): boolean {
  return isSize(start) && isSize(end) && start < end && start % bitCeil(end - start) === 0;
}

function range(start: number, end: number): ProofRange {
  return { start, end, nodes: completeSubtrees(start, end) };
}

/**
 * The ranges whose hashes make SUBTREE_PROOF(start, end, D[0:n]) (the draft's SUBTREE_SUBPROOF with known = true),
 * in proof order. Every range is an RFC 6962 subtree, so core/merkle.ts hashRanges (or runtime/tiles.ts
 * proofFromTiles) turns them into the proof. Throws 'out_of_range' for an invalid subtree or end > n.
 */
export function planSubtreeConsistencyProof(start: number, end: number, n: number): ProofRange[] {
  if (!isValidSubtree(start, end) || !isSize(n) || end > n) fail('out_of_range', `[${start}, ${end}) is not a valid subtree of a tree of size ${n}`);
  const ranges: ProofRange[] = [];
  let lo = 0;
  let hi = n;
  let s = start;
  let known = true;
  // Unrolled top-down; each level's hash is appended after the deeper ones, so the list is reversed at the end.
  for (;;) {
    if (s === lo && end === hi) {
      if (!known) ranges.push(range(lo, hi));
      break;
    }
    const k = splitPoint(hi - lo);
    if (end <= lo + k) {
      ranges.push(range(lo + k, hi));
      hi = lo + k;
    } else if (lo + k <= s) {
      ranges.push(range(lo, lo + k));
      lo += k;
    } else {
      // start < k < end: only when the subtree starts at lo (a valid subtree cannot straddle k otherwise).
      ranges.push(range(lo, lo + k));
      lo += k;
      s = lo;
      known = false;
    }
  }
  return ranges.reverse();
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * The draft's "Verifying a Subtree Consistency Proof": throws 'invalid_proof' unless `proof` shows that the subtree
 * [start, end) with hash `subtreeHash` is part of the tree of size n with root `rootHash`. 'out_of_range' for an
 * invalid subtree or end > n.
 */
export function verifySubtreeConsistency(start: number, end: number, n: number, proof: Hash[], subtreeHash: Hash, rootHash: Hash): void {
  if (!isValidSubtree(start, end) || !isSize(n) || end > n) fail('out_of_range', `[${start}, ${end}) is not a valid subtree of a tree of size ${n}`);
  if (!Array.isArray(proof) || proof.length > MAX_PROOF_LENGTH) fail('invalid_proof', 'subtree consistency proof is too long');
  for (const h of [...proof, subtreeHash, rootHash]) {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) fail('invalid_proof', 'subtree consistency proof holds a value that is not a 32-byte hash');
  }
  let fn = start;
  let sn = end - 1;
  let tn = n - 1;
  const shift = () => {
    fn = half(fn);
    sn = half(sn);
    tn = half(tn);
  };
  if (sn === tn) {
    while (fn !== sn) shift();
  } else {
    while (fn !== sn && odd(sn)) shift();
  }
  let fr: Hash;
  let sr: Hash;
  let rest: Hash[];
  if (fn === sn) {
    fr = sr = subtreeHash;
    rest = proof;
  } else {
    if (proof.length === 0) fail('invalid_proof', 'subtree consistency proof is empty');
    fr = sr = proof[0]!;
    rest = proof.slice(1);
  }
  for (const c of rest) {
    if (tn === 0) fail('invalid_proof', 'subtree consistency proof is too long');
    if (odd(sn) || sn === tn) {
      if (fn < sn) fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!odd(sn) && sn !== 0) shift();
    } else {
      sr = nodeHash(sr, c);
    }
    shift();
  }
  if (tn !== 0) fail('invalid_proof', 'subtree consistency proof is too short');
  if (!equal(fr, subtreeHash)) fail('invalid_proof', `the entries of [${start}, ${end}) do not hash to the subtree the proof is for`);
  if (!equal(sr, rootHash)) fail('invalid_proof', `subtree consistency proof for [${start}, ${end}) does not lead to the root of tree size ${n}`);
}

/** The RFC 6962 hash of a list of leaf hashes (MTH over the list; the empty list hashes to EMPTY_ROOT). */
export function listHash(leafHashes: Hash[]): Hash {
  if (leafHashes.length === 0) return Buffer.from(EMPTY_ROOT);
  // Fold the complete subtrees of [0, n) right to left, each hashed bottom-up.
  const nodes = completeSubtrees(0, leafHashes.length);
  const hashOf = (lo: number, size: number): Hash => {
    let row: Hash[] = leafHashes.slice(lo, lo + size);
    while (row.length > 1) {
      const up: Hash[] = [];
      for (let i = 0; i < row.length; i += 2) up.push(nodeHash(row[i]!, row[i + 1]!));
      row = up;
    }
    return row[0]!;
  };
  let h: Hash | undefined;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const size = 2 ** nodes[i]!.level;
    const x = hashOf(nodes[i]!.index * size, size);
    h = h === undefined ? x : nodeHash(x, h);
  }
  return h!;
}

// ---- add-entries ----

export interface AddEntriesHeader {
  origin: string;
  uploadStart: number;
  uploadEnd: number;
  ticket: Buffer;
}

/** The most bytes an origin may have here (the note rules cap a checkpoint line far below uint16). */
const MAX_ORIGIN_BYTES = 1024;
/** Longest ticket accepted (this mirror sends empty ones). */
export const MAX_TICKET_BYTES = 4096;

export function formatAddEntriesHeader(h: AddEntriesHeader): Buffer {
  const origin = utf8(h.origin);
  if (origin.length === 0 || origin.length > MAX_ORIGIN_BYTES) fail('malformed', 'log origin must be 1…1024 bytes');
  if (!isSize(h.uploadStart) || !isSize(h.uploadEnd) || h.uploadStart > h.uploadEnd) fail('malformed', 'upload_start must be ≤ upload_end');
  if (h.ticket.length > MAX_TICKET_BYTES) fail('malformed', 'ticket is too long');
  const out = Buffer.alloc(2 + origin.length + 16 + 2 + h.ticket.length);
  let p = out.writeUInt16BE(origin.length, 0);
  p += origin.copy(out, p);
  p = out.writeBigUInt64BE(BigInt(h.uploadStart), p);
  p = out.writeBigUInt64BE(BigInt(h.uploadEnd), p);
  p = out.writeUInt16BE(h.ticket.length, p);
  h.ticket.copy(out, p);
  return out;
}

/**
 * Parses the header at the start of `buf`. Returns undefined when `buf` is too short to hold it yet (streaming), else
 * the header and its length. Throws 'malformed' for an origin that is not UTF-8, numbers over 2^53−1,
 * upload_start > upload_end, or lengths over the caps.
 */
export function parseAddEntriesHeader(buf: Buffer): { header: AddEntriesHeader; length: number } | undefined {
  if (buf.length < 2) return undefined;
  const on = buf.readUInt16BE(0);
  if (on === 0 || on > MAX_ORIGIN_BYTES) fail('malformed', `log_origin_size ${on} is out of range`);
  if (buf.length < 2 + on + 18) return undefined;
  const originBytes = buf.subarray(2, 2 + on);
  const origin = originBytes.toString('utf8');
  if (!utf8(origin).equals(originBytes)) fail('malformed', 'log_origin is not valid UTF-8');
  const u64 = (at: number, what: string): number => {
    const v = buf.readBigUInt64BE(at);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('malformed', `${what} is out of range`);
    return Number(v);
  };
  const uploadStart = u64(2 + on, 'upload_start');
  const uploadEnd = u64(2 + on + 8, 'upload_end');
  if (uploadStart > uploadEnd) fail('malformed', `upload_start ${uploadStart} is greater than upload_end ${uploadEnd}`);
  const tn = buf.readUInt16BE(2 + on + 16);
  if (tn > MAX_TICKET_BYTES) fail('malformed', `ticket_size ${tn} is over ${MAX_TICKET_BYTES}`);
  const length = 2 + on + 18 + tn;
  if (buf.length < length) return undefined;
  return { header: { origin, uploadStart, uploadEnd, ticket: Buffer.from(buf.subarray(2 + on + 18, length)) }, length };
}

/** Entry package i of the canonical sequence: entries [start, end), proof for the subtree [subtreeStart, end). */
export interface PackageRange {
  subtreeStart: number;
  start: number;
  end: number;
}

/** How many packages the canonical sequence of [uploadStart, uploadEnd) has. */
export function packageCount(uploadStart: number, uploadEnd: number): number {
  if (uploadStart === uploadEnd) return 0;
  const roundedStart = Math.floor(uploadStart / PACKAGE_WIDTH) * PACKAGE_WIDTH;
  const roundedEnd = Math.ceil(uploadEnd / PACKAGE_WIDTH) * PACKAGE_WIDTH;
  return (roundedEnd - roundedStart) / PACKAGE_WIDTH;
}

/** Package i (0 ≤ i < packageCount) of the canonical sequence of [uploadStart, uploadEnd). */
export function packageRange(uploadStart: number, uploadEnd: number, i: number): PackageRange {
  const roundedStart = Math.floor(uploadStart / PACKAGE_WIDTH) * PACKAGE_WIDTH;
  const subtreeStart = roundedStart + i * PACKAGE_WIDTH;
  return { subtreeStart, start: Math.max(uploadStart, subtreeStart), end: Math.min(uploadEnd, subtreeStart + PACKAGE_WIDTH) };
}

/** One entry package's bytes: the entries (uint16 length each), num_hashes, the subtree consistency proof. */
export function formatEntryPackage(entries: Uint8Array[], proof: Hash[]): Buffer {
  if (proof.length > MAX_PACKAGE_HASHES) fail('malformed', `a package carries at most ${MAX_PACKAGE_HASHES} proof hashes`);
  let total = 1 + proof.length * HASH_SIZE;
  for (const e of entries) {
    if (e.length > MAX_ENTRY_SIZE) fail('too_large', `entry of ${e.length} bytes does not fit a 2-byte length`);
    total += 2 + e.length;
  }
  const out = Buffer.allocUnsafe(total);
  let p = 0;
  for (const e of entries) {
    p = out.writeUInt16BE(e.length, p);
    out.set(e, p);
    p += e.length;
  }
  out[p++] = proof.length;
  for (const h of proof) {
    if (h.length !== HASH_SIZE) fail('malformed', 'proof hashes must be 32 bytes');
    out.set(h, p);
    p += HASH_SIZE;
  }
  return out;
}

export interface MirrorInfo {
  /** The tree size of a valid pending checkpoint. */
  treeSize: number;
  /** The mirror's next entry. */
  nextEntry: number;
  ticket: Buffer;
}

/** The `text/x.tlog.mirror-info` body: three lines (size, next entry, base64 ticket), each ending in "\n". */
export function formatMirrorInfo(m: MirrorInfo): string {
  return `${m.treeSize}\n${m.nextEntry}\n${encodeBase64(m.ticket)}\n`;
}

/** Strict parse of a mirror-info body. Throws 'malformed'. */
export function parseMirrorInfo(body: Uint8Array | string): MirrorInfo {
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  if (text.length > 16 * 1024) fail('malformed', 'mirror info is too long');
  const lines = text.split('\n');
  if (lines.length !== 4 || lines[3] !== '') fail('malformed', 'mirror info must be exactly three lines, each ending in a newline');
  return {
    treeSize: parseDecimal(lines[0]!, 'mirror info tree size'),
    nextEntry: parseDecimal(lines[1]!, 'mirror info next entry'),
    ticket: lines[2] === '' ? Buffer.alloc(0) : decodeBase64(lines[2]!, 'mirror info ticket'),
  };
}
