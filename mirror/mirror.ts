/**
 * The mirror itself (C2SP tlog-mirror), independent of HTTP: for each configured log a pending checkpoint updated as a
 * witness's add-checkpoint would be (but never cosigned), entry packages authenticated by subtree consistency proofs
 * against a pending checkpoint and appended to the copy (entry bundles + hash tiles, one commit per batch), and the
 * mirror checkpoint: cosigned only once every entry up to its size is committed (synchronous=FULL) and served.
 * Pull mode feeds the same path from the log's own tiles (runtime/tiles.ts): packages and proofs built from tiles
 * authenticated against the log's signed checkpoint, then checked again like any pushed package.
 */
import { fail, isPkglogError, PkglogError } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';
import { EMPTY_ROOT, leafHash, nodeHash } from '../core/hash.ts';
import { parseCheckpoint, type Checkpoint } from '../core/checkpoint.ts';
import {
  formatSignatureLine,
  formatSignedNote,
  formatVerifierKey,
  parseSignedNote,
  signText,
  verifyNote,
  type NoteSignature,
  type Signer,
  type Verifier,
} from '../core/note.ts';
import { parsePublicKeyVerifier } from '../core/public-key.ts';
import { LOG_KEY_TYPES } from '../core/policy.ts';
import { cosignatureTimestamp } from '../core/cosignature.ts';
import { completeSubtrees, verifyConsistency } from '../core/merkle.ts';
import { integrate, rightEdgeTiles } from '../core/integrate.ts';
import { formatEntryBundle, nodeHashFromTiles, parseEntryBundle, tileWidth, TILE_WIDTH, type Tile } from '../core/tiles.ts';
import { parseAddCheckpointRequest, type AddCheckpointRequest } from '../core/witness-protocol.ts';
import {
  listHash,
  packageCount,
  packageRange,
  planSubtreeConsistencyProof,
  verifySubtreeConsistency,
  type MirrorInfo,
  type PackageRange,
} from '../core/tlog-mirror.ts';
import { consistencyProofFromTiles, proofFromTiles, type TileSource } from '../runtime/tiles.ts';
import type { BundleWrite, EdgeTile, MirrorCheckpoint, MirrorLog, MirrorStore, StoredCheckpoint } from './store.ts';

export type LogLevel = 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, msg: string) => void;

/** A log to pull from: its signed checkpoint and its tiles (HttpTiles over its URL, or anything else). */
export interface LogSource extends TileSource {
  checkpoint(): Promise<Buffer | string>;
  clearCache?(): void;
}

/** One authenticated unit of add-entries: entries [range.start, range.end) and the subtree consistency proof. */
export interface EntryPackage {
  range: PackageRange;
  entries: Buffer[];
  proof: Hash[];
}

export interface MirrorOptions {
  store: MirrorStore;
  /** The mirror's cosigners (Ed25519 cosignature/v1 first; ML-DSA-44 optional), all with the mirror's name. */
  signers: Signer[];
  now?: () => number;
  log?: Logger;
  /** The log's tiles (from its URL) for a pushed log with a minimum index: the tiles straddling it come from there. */
  sourceFor?: (log: MirrorLog) => LogSource;
}

/** How far below its next entry a client may start an upload (entries it re-sends for nothing). */
export const MAX_EXCESS_ENTRIES = 4 * TILE_WIDTH;
/** Packages one pull batch verifies and commits at once (one fsync per batch). */
export const PULL_BATCH_PACKAGES = 32;
/** Cosignature lines of others (witnesses) carried from a pending checkpoint into the served one. */
const MAX_CARRIED_SIGNATURES = 32;

/** A 409 (or 202) whose body is mirror-info: the app turns details.mirrorInfo into text/x.tlog.mirror-info. */
export function mirrorConflict(message: string, info: MirrorInfo): never {
  throw new PkglogError('stale_size', message, { mirrorInfo: info });
}

interface Verified {
  log: MirrorLog;
  checkpoint: Checkpoint;
  text: string;
  /** Every signature line of the note, the log's verified ones first. */
  signatures: NoteSignature[];
}

export class Mirror {
  readonly store: MirrorStore;
  readonly signers: Signer[];
  readonly name: string;
  readonly vkey: string;
  readonly vkeys: string[];
  readonly now: () => number;
  readonly log: Logger;
  private readonly sourceFor: ((log: MirrorLog) => LogSource) | undefined;
  private readonly verifiers = new Map<string, Verifier>();

  constructor(opts: MirrorOptions) {
    if (opts.signers.length === 0) fail('usage', 'the mirror needs at least one cosigning key');
    this.store = opts.store;
    this.signers = opts.signers;
    this.name = opts.signers[0]!.name;
    this.vkeys = opts.signers.map((s) => formatVerifierKey(s.name, s.type, s.publicKey));
    this.vkey = this.vkeys[0]!;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => {});
    this.sourceFor = opts.sourceFor;
  }

  verifierFor(log: MirrorLog): Verifier {
    let v = this.verifiers.get(log.vkey);
    if (v === undefined) {
      v = parsePublicKeyVerifier(log.vkey, { type: LOG_KEY_TYPES, what: 'the log key' });
      this.verifiers.set(log.vkey, v);
    }
    return v;
  }

  /** Parse, find the origin (404), verify the log's signature (403). */
  verifyLogSigned(note: Uint8Array | string): Verified {
    const parsed = parseSignedNote(note);
    const cp = parseCheckpoint(parsed.text);
    const log = this.store.getLog(cp.origin);
    if (log === undefined) fail('not_found', `unknown log origin ${JSON.stringify(cp.origin)}`);
    let vn;
    try {
      vn = verifyNote(note, [this.verifierFor(log)]);
    } catch (e) {
      if (isPkglogError(e, 'bad_signature') || isPkglogError(e, 'unknown_key')) fail('bad_signature', `no valid signature by the key of log ${log.origin}: ${e.message}`);
      throw e;
    }
    const logSigs = vn.verified.map((v) => v.signature);
    const others = parsed.signatures.filter((s) => !logSigs.includes(s) && !vn.verified.some((v) => v.signature.name === s.name && v.signature.keyId.equals(s.keyId)));
    return { log, checkpoint: cp, text: parsed.text, signatures: [...logSigs, ...others] };
  }

  // ---- add-checkpoint: the pending checkpoint ----

  /** C2SP tlog-mirror add-checkpoint on a raw body: updates the pending checkpoint; the answer body is empty. */
  addCheckpoint(body: Uint8Array): void {
    this.updatePending(parseAddCheckpointRequest(body));
  }

  /** The witness's add-checkpoint checks, against the pending checkpoint; CAS on its size. */
  updatePending(req: AddCheckpointRequest): void {
    const v = this.verifyLogSigned(req.checkpoint);
    const cp = v.checkpoint;
    if (req.oldSize > cp.treeSize) fail('out_of_range', `old size ${req.oldSize} is larger than the checkpoint size ${cp.treeSize}`);
    for (let attempt = 0; attempt < 8; attempt++) {
      const latest = this.store.latestPending(v.log.id);
      const known = latest?.treeSize ?? 0;
      if (req.oldSize !== known) fail('stale_size', `old size ${req.oldSize} does not match the pending size ${known}`, { treeSize: known });
      if (req.oldSize === 0 && req.consistencyProof.length !== 0) fail('invalid_proof', 'the consistency proof must be empty when old is 0');
      if (cp.treeSize === 0 && !cp.rootHash.equals(EMPTY_ROOT)) fail('invalid_proof', 'a checkpoint of size 0 must have the empty-tree root');
      if (latest !== undefined) {
        if (cp.treeSize === latest.treeSize) {
          if (!cp.rootHash.equals(latest.root)) fail('inconsistent', `tree size ${cp.treeSize} is already pending with a different root hash`);
        } else {
          verifyConsistency(latest.treeSize, cp.treeSize, latest.root, cp.rootHash, req.consistencyProof);
        }
      }
      const note = formatSignedNote({ text: v.text, signatures: v.signatures.slice(0, 1 + MAX_CARRIED_SIGNATURES) });
      if (this.store.advancePending(v.log.id, latest?.treeSize ?? null, { treeSize: cp.treeSize, root: cp.rootHash, note }, this.seconds())) return;
    }
    fail('overloaded', `too much contention on log ${cp.origin}; retry`);
  }

  // ---- add-entries ----

  /** The mirror-info for a log: a valid pending size (upload_end when it is valid) and the next entry. */
  info(log: MirrorLog, uploadEnd?: number): MirrorInfo {
    const fresh = this.store.getLogById(log.id)!;
    const size = uploadEnd ?? this.store.latestPending(log.id)?.treeSize ?? 0;
    return { treeSize: size, nextEntry: fresh.nextEntry, ticket: Buffer.alloc(0) };
  }

  /**
   * The checks add-entries makes on its header, in the spec's order. Returns the checkpoint at upload_end and the
   * mirror's next entry; throws 404 (unknown origin), 422 'no_checkpoint', or 409 with mirror-info.
   */
  checkUpload(origin: string, uploadStart: number, uploadEnd: number): { log: MirrorLog; target: StoredCheckpoint } {
    const log = this.store.getLog(origin);
    if (log === undefined) fail('not_found', `unknown log origin ${JSON.stringify(origin)}`);
    const latest = this.store.latestPending(log.id);
    if (latest === undefined) fail('no_checkpoint', `this mirror has no pending checkpoint of ${origin} yet: send add-checkpoint first`);
    const mirrored = this.store.mirrorCheckpoint(log.id);
    const target = this.store.pendingAt(log.id, uploadEnd) ?? (mirrored?.treeSize === uploadEnd ? mirrored : undefined);
    if (target === undefined) mirrorConflict(`upload_end ${uploadEnd} is not the size of a known pending checkpoint`, this.info(log));
    if (mirrored !== undefined && uploadEnd < mirrored.treeSize) mirrorConflict(`upload_end ${uploadEnd} is below the mirror checkpoint's size ${mirrored.treeSize}`, this.info(log));
    // With a minimum index M the mirror keeps no checkpoint below M and no entry below M: both are too far below.
    if (uploadEnd < log.minIndex) mirrorConflict(`upload_end ${uploadEnd} is below the minimum index ${log.minIndex} this mirror keeps the log from`, this.info(log));
    if (uploadStart < log.minIndex) mirrorConflict(`upload_start ${uploadStart} is below the minimum index ${log.minIndex}`, this.info(log, uploadEnd));
    if (uploadStart > log.nextEntry) mirrorConflict(`upload_start ${uploadStart} is past the next entry ${log.nextEntry}`, this.info(log, uploadEnd));
    const excess = Math.min(uploadEnd, log.nextEntry) - uploadStart;
    if (excess > MAX_EXCESS_ENTRIES) mirrorConflict(`upload_start ${uploadStart} is ${excess} entries below the next entry ${log.nextEntry}`, this.info(log, uploadEnd));
    return { log, target };
  }

  /**
   * Authenticates consecutive packages (each against `target`, the checkpoint at upload_end) and appends the entries
   * the copy does not hold yet, in one commit. A package that does not verify throws 'invalid_proof' (422) and nothing
   * of this call is stored. Returns the next entry after the commit.
   */
  ingest(logId: number, target: StoredCheckpoint, packages: EntryPackage[]): number {
    for (let attempt = 0; attempt < 8; attempt++) {
      const log = this.store.getLogById(logId)!;
      const next = log.nextEntry;
      if (!this.hasEdge(log)) fail('internal', `the tiles at the minimum index ${log.minIndex} of ${log.origin} are not stored yet`);
      const newLeaves: Hash[] = [];
      const newEntries: Buffer[] = [];
      for (const p of packages) {
        const { subtreeStart, start, end } = p.range;
        if (p.entries.length !== end - start) fail('malformed', `package [${start}, ${end}) carries ${p.entries.length} entries`);
        const have = next + newLeaves.length; // entries [0, have) are stored or in this batch
        if (start > have) fail('internal', `package [${start}, ${end}) starts past the entries held (${have})`);
        // The subtree's leaves before `start` are in the copy already (start ≤ next): read their hashes from level 0.
        const before = start > subtreeStart ? this.storedLeafHashes(log, subtreeStart, start, newLeaves, next) : [];
        const received = p.entries.map((e) => leafHash(e));
        try {
          verifySubtreeConsistency(subtreeStart, end, target.treeSize, p.proof, listHash([...before, ...received]), target.root);
        } catch (e) {
          if (isPkglogError(e, 'invalid_proof') || isPkglogError(e, 'out_of_range')) {
            fail('invalid_proof', `entry package [${start}, ${end}) does not verify against the checkpoint of size ${target.treeSize}: ${e.message}`);
          }
          throw e;
        }
        for (let i = Math.max(start, have); i < end; i++) {
          newLeaves.push(received[i - start]!);
          newEntries.push(p.entries[i - start]!);
        }
      }
      if (newLeaves.length === 0) return next;
      const r = integrate(next, (t) => this.storedTile(log.id, t), newLeaves);
      const bundles = this.bundleWrites(log.id, next, newEntries);
      if (this.store.append(log.id, next, r.treeSize, r.tiles, bundles)) return r.treeSize;
      // Lost a race with a concurrent upload or pull: verify again against the new state.
    }
    return fail('overloaded', 'too much contention on this log; retry');
  }

  /** Hashes of leaves [from, to) (to ≤ next + batch): stored ones from the level-0 tile, the rest from this batch. */
  private storedLeafHashes(log: MirrorLog, from: number, to: number, batch: Hash[], next: number): Hash[] {
    const out: Hash[] = [];
    const tileIndex = Math.floor(from / TILE_WIDTH);
    const stored = Math.min(to, next);
    if (from < stored) {
      const data = this.store.tile(log.id, 0, tileIndex);
      const need = (stored - tileIndex * TILE_WIDTH) * 32;
      if (data === undefined || data.length < need) fail('internal', `the stored level-0 tile ${tileIndex} is missing or short`);
      for (let i = from; i < stored; i++) out.push(data.subarray((i - tileIndex * TILE_WIDTH) * 32, (i - tileIndex * TILE_WIDTH + 1) * 32));
    }
    for (let i = Math.max(from, next); i < to; i++) out.push(batch[i - next]!);
    return out;
  }

  /** A stored hash tile at `t.width` (a prefix of the stored row). */
  private storedTile(logId: number, t: Tile): Buffer {
    const data = this.store.tile(logId, t.level, t.index);
    if (data === undefined || data.length < t.width * 32) fail('internal', `stored tile ${t.level}/${t.index} is missing or narrower than ${t.width}`);
    return data.subarray(0, t.width * 32);
  }

  /** The bundle rows that change when `entries` are appended at `next`. */
  private bundleWrites(logId: number, next: number, entries: Buffer[]): BundleWrite[] {
    const out: BundleWrite[] = [];
    let at = next;
    let i = 0;
    while (i < entries.length) {
      const index = Math.floor(at / TILE_WIDTH);
      const offset = at - index * TILE_WIDTH;
      const take = Math.min(TILE_WIDTH - offset, entries.length - i);
      let prior: Buffer[] = [];
      if (offset > 0) {
        const row = this.store.bundle(logId, index);
        if (row === undefined || row.count !== offset) fail('internal', `stored bundle ${index} does not hold ${offset} entries`);
        prior = parseEntryBundle(row.data);
      }
      const all = [...prior, ...entries.slice(i, i + take)];
      out.push({ index, count: all.length, data: formatEntryBundle(all) });
      i += take;
      at += take;
    }
    return out;
  }

  /** The root of the copy at `size` (minimum index ≤ size ≤ next entry), from the stored tiles. */
  rootAt(logId: number, size: number): Hash {
    return rootFromTiles(size, (t) => this.storedTile(logId, t));
  }

  // ---- the minimum index ----

  /**
   * Does the copy hold what a log of size M (the minimum index) needs to grow: the hash tiles straddling M (its
   * right-edge tiles, core/integrate.ts rightEdgeTiles), prefixes below M that no entry package carries?
   */
  hasEdge(log: MirrorLog): boolean {
    if (log.minIndex === 0 || log.nextEntry > log.minIndex) return true;
    return rightEdgeTiles(log.minIndex).every((t) => (this.store.tile(log.id, t.level, t.index)?.length ?? 0) >= t.width * 32);
  }

  /**
   * Before the first entry at a minimum index M > 0: reads the tiles straddling M from the log (the prefixes a tlog-tiles
   * log pruned at M still serves, and what the mirror needs to compute roots and tiles from M on), authenticates them
   * (the root of size M they give must verify by a consistency proof from M to the checkpoint `target`, read from the
   * log's tiles) and stores them. Throws 'invalid_proof' when they do not verify.
   */
  async ensureEdge(log: MirrorLog, target: StoredCheckpoint, source: LogSource | undefined = this.sourceFor?.(log)): Promise<void> {
    if (this.hasEdge(log)) return;
    const m = log.minIndex;
    if (target.treeSize < m) fail('internal', `the checkpoint of size ${target.treeSize} is below the minimum index ${m}`);
    if (source === undefined) fail('network', `no source for the tiles of ${log.origin} at its minimum index ${m}`);
    const edge = rightEdgeTiles(m);
    const datas = await Promise.all(edge.map((t) => source.tile({ level: t.level, index: t.index, width: tileWidth(t.level, t.index, target.treeSize) })));
    const tiles: EdgeTile[] = edge.map((t, i) => {
      const d = datas[i]!;
      if (d.length < t.width * 32) fail('invalid_proof', `the log's tile ${t.level}/${t.index} has fewer than ${t.width} hashes`);
      return { level: t.level, index: t.index, data: Buffer.from(d.subarray(0, t.width * 32)) };
    });
    const byKey = new Map(tiles.map((t) => [`${t.level}/${t.index}`, t.data]));
    try {
      const root = rootFromTiles(m, (t) => byKey.get(`${t.level}/${t.index}`) ?? fail('internal', `tile ${t.level}/${t.index} is not at the edge of size ${m}`));
      verifyConsistency(m, target.treeSize, root, target.root, await consistencyProofFromTiles(source, m, target.treeSize, target.root));
    } catch (e) {
      if (isPkglogError(e, 'invalid_proof') || isPkglogError(e, 'malformed')) {
        fail('invalid_proof', `the log's tiles at the minimum index ${m} do not verify against the checkpoint of size ${target.treeSize}: ${e.message}`);
      }
      throw e;
    }
    this.store.putEdge(log.id, tiles);
  }

  /** Is `tile` pruned: its end index (tlog-tiles: (N+1)·256^(L+1); bundles as level 0) at or below the minimum index? */
  pruned(log: MirrorLog, tile: Tile): boolean {
    return (tile.index + 1) * TILE_WIDTH ** (Math.max(tile.level, 0) + 1) <= log.minIndex;
  }

  /**
   * The end of add-entries (and of a pull): with every entry below upload_end committed, check the copy's root at
   * upload_end is the checkpoint's, cosign it and make it the mirror checkpoint unless a larger one was stored
   * meanwhile (409). Returns the cosignature lines (the 200 body).
   */
  finish(logId: number, target: StoredCheckpoint): string {
    const log = this.store.getLogById(logId)!;
    if (log.nextEntry < target.treeSize || target.treeSize < log.minIndex) fail('internal', `finish at ${target.treeSize} with entries [${log.minIndex}, ${log.nextEntry}) stored`);
    const root = this.rootAt(logId, target.treeSize);
    if (!root.equals(target.root)) fail('internal', `the copy's root at size ${target.treeSize} is not the checkpoint's: refusing to cosign`);
    const current = this.store.mirrorCheckpoint(logId);
    if (current !== undefined && current.treeSize > target.treeSize) mirrorConflict(`the mirror checkpoint is already at size ${current.treeSize}`, this.info(log));
    const parsed = parseSignedNote(target.note);
    const carried = parsed.signatures.filter((s) => !this.signers.some((m) => m.name === s.name));
    const sigs = this.signers.map((s) => signText(parsed.text, s));
    const cp: MirrorCheckpoint = {
      treeSize: target.treeSize,
      root: target.root,
      cosignedAt: cosignatureTimestamp(sigs[0]!),
      note: formatSignedNote({ text: parsed.text, signatures: [...carried, ...sigs] }),
    };
    if (!this.store.putMirrorCheckpoint(logId, cp)) mirrorConflict('the mirror checkpoint moved past this upload', this.info(log));
    return sigs.map(formatSignatureLine).join('');
  }

  // ---- serving ----

  /**
   * The bytes of a tile or entry bundle (level -1) as of the mirror checkpoint, or undefined when it is beyond it (or
   * not held: below the minimum index). A partial tile is the prefix of the stored row.
   */
  servedTile(log: MirrorLog, tile: Tile): Buffer | undefined {
    const cp = this.store.mirrorCheckpoint(log.id);
    if (cp === undefined || this.pruned(log, tile)) return undefined;
    const width = tileWidth(Math.max(tile.level, 0), tile.index, cp.treeSize);
    if (tile.width > width) return undefined;
    if (tile.level >= 0) {
      const data = this.store.tile(log.id, tile.level, tile.index);
      return data === undefined || data.length < tile.width * 32 ? undefined : data.subarray(0, tile.width * 32);
    }
    const row = this.store.bundle(log.id, tile.index);
    if (row === undefined || row.count < tile.width) return undefined;
    if (row.count === tile.width) return row.data;
    return formatEntryBundle(parseEntryBundle(row.data).slice(0, tile.width));
  }

  // ---- pull mode ----

  /**
   * Follows a log through its checkpoint and tiles: updates the pending checkpoint (consistency proof from the tiles),
   * fetches the entry bundles from the next entry up to it, authenticates each package with a subtree consistency
   * proof read from tiles that hash to the signed root, commits them in batches, and cosigns. Returns what happened.
   */
  async pull(logId: number, source: LogSource, opts: { onProgress?: (next: number) => void } = {}): Promise<string> {
    const log = this.store.getLogById(logId)!;
    const note = await source.checkpoint();
    const v = this.verifyLogSigned(note);
    if (v.log.id !== log.id) fail('malformed', `the log's checkpoint is for origin ${v.log.origin}, not ${log.origin}`);
    const latest = this.store.latestPending(log.id);
    const cp = v.checkpoint;
    if (latest === undefined || cp.treeSize > latest.treeSize || (cp.treeSize === latest.treeSize && cp.rootHash.equals(latest.root))) {
      const proof = latest === undefined ? [] : await consistencyProofFromTiles(source, latest.treeSize, cp.treeSize, cp.rootHash);
      this.updatePending({ oldSize: latest?.treeSize ?? 0, consistencyProof: proof, checkpoint: Buffer.from(note) });
    } else if (cp.treeSize === latest.treeSize) {
      fail('inconsistent', `the log serves a checkpoint of size ${cp.treeSize} with a root other than the pending one`);
    }
    const target = this.store.latestPending(log.id)!;
    if (target.treeSize < log.minIndex) return `waiting: the log has ${target.treeSize} entries, the minimum index is ${log.minIndex}`;
    const mirrored = this.store.mirrorCheckpoint(log.id);
    if (mirrored !== undefined && mirrored.treeSize === target.treeSize && mirrored.root.equals(target.root)) {
      // Re-cosigned only when the log's checkpoint gained cosignatures (e.g. a witness's) the served one lacks.
      const served = new Set(parseSignedNote(mirrored.note).signatures.map((x) => formatSignatureLine(x)));
      const others = parseSignedNote(target.note).signatures.filter((x) => !this.signers.some((m) => m.name === x.name));
      if (others.every((x) => served.has(formatSignatureLine(x)))) return 'up to date';
      this.finish(log.id, target);
      return `cosigned ${target.treeSize} again (new cosignatures from the log)`;
    }
    await this.ensureEdge(log, target, source);
    let next = this.store.getLogById(log.id)!.nextEntry;
    while (next < target.treeSize) {
      const count = Math.min(PULL_BATCH_PACKAGES, packageCount(next, target.treeSize));
      const ranges = Array.from({ length: count }, (_, i) => packageRange(next, target.treeSize, i));
      const packages = await Promise.all(ranges.map((r) => this.packageFromTiles(source, r, target)));
      next = this.ingest(log.id, target, packages);
      opts.onProgress?.(next);
    }
    this.finish(log.id, target);
    return `cosigned ${target.treeSize}`;
  }

  /** One package built from the log's tiles: the entries from its bundle, the proof from authenticated hash tiles. */
  private async packageFromTiles(source: LogSource, range: PackageRange, target: StoredCheckpoint): Promise<EntryPackage> {
    const index = range.subtreeStart / TILE_WIDTH;
    const bundle = { level: -1, index, width: tileWidth(0, index, target.treeSize) };
    const [data, proof] = await Promise.all([
      source.tile(bundle),
      proofFromTiles(source, planSubtreeConsistencyProof(range.subtreeStart, range.end, target.treeSize), target.treeSize, target.root),
    ]);
    let entries: Buffer[];
    try {
      entries = parseEntryBundle(data);
    } catch (e) {
      return fail('invalid_proof', `the log's entry bundle ${index} is not a valid bundle: ${(e as Error).message}`);
    }
    if (entries.length !== bundle.width) fail('invalid_proof', `the log's entry bundle ${index} has ${entries.length} entries, not ${bundle.width}`);
    return { range, entries: entries.slice(range.start - range.subtreeStart, range.end - range.subtreeStart), proof };
  }

  private seconds(): number {
    return Math.floor(this.now() / 1000);
  }
}

/** The root of the tree of `size` from its tiles (`read` returns a tile at the width of `size`). */
function rootFromTiles(size: number, read: (t: Tile) => Buffer): Hash {
  if (size === 0) return Buffer.from(EMPTY_ROOT);
  const nodes = completeSubtrees(0, size);
  let h: Hash | undefined;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const x = nodeHashFromTiles(nodes[i]!, size, read);
    h = h === undefined ? x : nodeHash(x, h);
  }
  return h!;
}
