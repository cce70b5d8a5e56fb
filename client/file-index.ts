/**
 * An on-disk index "file identity → first artifact" for the one-artifact-per-file rule, with memory bounded
 * whatever the log's size (client/ may not use SQLite: better-sqlite3 is a server dependency, node:sqlite is not in Node 20).
 *
 * One hash-bucketed file `<dir>/index.bin`: a 16-byte header (magic, bucket count, bucket capacity), the record count
 * of each of the 256 buckets (4 bytes each), then 256 fixed-capacity regions of 32-byte records
 *   keyHash (16 bytes: SHA-256(fileKey) prefix) ‖ artifact (8 bytes: SHA-256-of-file prefix) ‖ index (8 bytes BE).
 * The bucket is the first byte of keyHash. New records are buffered (`add`) and checked in batches (`flush`): the batch
 * is counting-sorted by bucket, each touched bucket region is read once (one pread) and checked against the batch's
 * keys, and the new keys are written after it, then its count. When a bucket would overflow, the file is rebuilt with
 * twice the capacity, bucket by bucket (amortised O(1) per record). Memory: the batch (≤ maxPending records) plus one
 * bucket region (≈ 2·N/256·32 bytes for N files). One file, created sparse: no per-bucket file creation cost.
 * Crash safety: records are written before their bucket's count, so a crash loses at most the last batch, which the
 * caller replays from its saved position; re-adding an entry already indexed (same index) is a no-op.
 * Prefix collisions (2^-64 per pair) could only cause a false report, which the evidence check (full leaves) exposes.
 */
import { openSync, readSync, writeSync, closeSync, mkdirSync, fstatSync, rmSync, ftruncateSync, renameSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { hash } from 'node:crypto';

export const RECORD_SIZE = 32;
const BUCKETS = 256;
const MAGIC = Buffer.from('pkglogfi');
const HEADER = 16 + BUCKETS * 4;
const INITIAL_CAPACITY = 256;

export interface FileConflict {
  /** Index of the entry first logged for the file. */
  firstIndex: number;
  /** Index of the later entry with a different artifact. */
  index: number;
}

export function fileKeyHash(fileKey: string): Buffer {
  return (hash('sha256', fileKey, 'buffer') as Buffer).subarray(0, 16);
}

export class FileIndex {
  readonly dir: string;
  readonly maxPending: number;
  private pending: Buffer;
  private count = 0;

  private fd: number;
  private capacity: number;
  private readonly counts = new Uint32Array(BUCKETS);

  constructor(dir: string, maxPending = 1 << 18, initialCapacity = INITIAL_CAPACITY) {
    this.dir = dir;
    this.capacity = initialCapacity;
    this.maxPending = maxPending;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.pending = Buffer.allocUnsafe(Math.min(maxPending, 4096) * RECORD_SIZE);
    const path = join(dir, 'index.bin');
    const fresh = !existsSync(path);
    this.fd = openSync(path, fresh ? 'w+' : 'r+', 0o600);
    if (fresh || fstatSync(this.fd).size < HEADER) {
      this.writeHeader(this.fd, initialCapacity);
    } else {
      const h = Buffer.alloc(HEADER);
      readSync(this.fd, h, 0, HEADER, 0);
      if (!h.subarray(0, 8).equals(MAGIC) || h.readUInt32BE(8) !== BUCKETS) throw new Error(`${path} is not a pkglog file index`);
      this.capacity = h.readUInt32BE(12);
      for (let b = 0; b < BUCKETS; b++) this.counts[b] = h.readUInt32BE(16 + 4 * b);
    }
  }

  private writeHeader(fd: number, capacity: number): void {
    const h = Buffer.alloc(HEADER);
    MAGIC.copy(h, 0);
    h.writeUInt32BE(BUCKETS, 8);
    h.writeUInt32BE(capacity, 12);
    for (let b = 0; b < BUCKETS; b++) h.writeUInt32BE(this.counts[b]!, 16 + 4 * b);
    ftruncateSync(fd, HEADER + BUCKETS * capacity * RECORD_SIZE);
    writeSync(fd, h, 0, HEADER, 0);
  }

  private regionOffset(bucket: number, capacity = this.capacity): number {
    return HEADER + bucket * capacity * RECORD_SIZE;
  }

  /** Rebuilds the file with a larger capacity per bucket (streamed bucket by bucket). */
  private grow(needed: number): void {
    let capacity = this.capacity * 2;
    while (capacity < needed) capacity *= 2;
    const path = join(this.dir, 'index.bin');
    const tmp = `${path}.grow`;
    const fd = openSync(tmp, 'w+', 0o600);
    try {
      this.writeHeader(fd, capacity);
      for (let b = 0; b < BUCKETS; b++) {
        const n = this.counts[b]!;
        if (n === 0) continue;
        const buf = Buffer.allocUnsafe(n * RECORD_SIZE);
        readSync(this.fd, buf, 0, buf.length, this.regionOffset(b));
        writeSync(fd, buf, 0, buf.length, this.regionOffset(b, capacity));
      }
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    closeSync(this.fd);
    renameSync(tmp, path);
    this.fd = fd;
    this.capacity = capacity;
  }

  get pendingCount(): number {
    return this.count;
  }

  /** Buffers one entry (call flush when `full`). `artifactSha256` is the file's SHA-256 (32 bytes). */
  add(keyHash: Uint8Array, artifactSha256: Uint8Array, index: number): void {
    if (this.count * RECORD_SIZE >= this.pending.length) {
      const bigger = Buffer.allocUnsafe(Math.min(this.maxPending * RECORD_SIZE, this.pending.length * 2) || RECORD_SIZE);
      if (bigger.length <= this.pending.length) throw new Error('FileIndex: flush before adding more than maxPending records');
      this.pending.copy(bigger, 0, 0, this.count * RECORD_SIZE);
      this.pending = bigger;
    }
    const off = this.count * RECORD_SIZE;
    this.pending.set(keyHash.subarray(0, 16), off);
    this.pending.set(artifactSha256.subarray(0, 8), off + 16);
    this.pending.writeBigUInt64BE(BigInt(index), off + 24);
    this.count++;
  }

  get full(): boolean {
    return this.count >= this.maxPending;
  }

  /** Checks the buffered records against the index and each other, appends the new files; returns conflicts in index order. */
  flush(): FileConflict[] {
    const n = this.count;
    if (n === 0) return [];
    const src = this.pending;
    // Counting sort by bucket (stable: keeps log order within a bucket).
    const counts = new Uint32Array(BUCKETS + 1);
    const bucketOf = (off: number) => src[off]!;
    for (let i = 0; i < n; i++) counts[bucketOf(i * RECORD_SIZE) + 1]!++;
    for (let b = 0; b < BUCKETS; b++) counts[b + 1]! += counts[b]!;
    const starts = counts.slice();
    const sorted = Buffer.allocUnsafe(n * RECORD_SIZE);
    for (let i = 0; i < n; i++) {
      const off = i * RECORD_SIZE;
      src.copy(sorted, starts[bucketOf(off)]!++ * RECORD_SIZE, off, off + RECORD_SIZE);
    }
    const conflicts: FileConflict[] = [];
    for (let b = 0; b < BUCKETS; b++) {
      const lo = counts[b]!;
      const hi = counts[b + 1]!;
      if (lo < hi) this.flushBucket(b, sorted.subarray(lo * RECORD_SIZE, hi * RECORD_SIZE), conflicts);
    }
    this.count = 0;
    if (this.pending.length > 4096 * RECORD_SIZE) this.pending = Buffer.allocUnsafe(4096 * RECORD_SIZE);
    return conflicts.sort((a, b) => a.index - b.index);
  }

  private flushBucket(bucket: number, batch: Buffer, conflicts: FileConflict[]): void {
    const recs = batch.length / RECORD_SIZE;
    const batchRecs: Array<{ key: string; artifact: string; index: number; off: number }> = [];
    for (let i = 0; i < recs; i++) {
      const off = i * RECORD_SIZE;
      batchRecs.push({ key: batch.toString('latin1', off, off + 16), artifact: batch.toString('latin1', off + 16, off + 24), index: Number(batch.readBigUInt64BE(off + 24)), off });
    }
    const keys = new Set(batchRecs.map((r) => r.key));
    // The bucket's stored records: the first record of every key the batch mentions.
    const want = new Map<string, { artifact: string; index: number }>();
    const have = this.counts[bucket]!;
    if (have > 0) {
      const buf = Buffer.allocUnsafe(have * RECORD_SIZE);
      readSync(this.fd, buf, 0, buf.length, this.regionOffset(bucket));
      for (let off = 0; off < buf.length; off += RECORD_SIZE) {
        const key = buf.toString('latin1', off, off + 16);
        if (keys.has(key) && !want.has(key)) want.set(key, { artifact: buf.toString('latin1', off + 16, off + 24), index: Number(buf.readBigUInt64BE(off + 24)) });
      }
    }
    const toAppend: Buffer[] = [];
    for (const r of batchRecs) {
      const first = want.get(r.key);
      if (first === undefined) {
        want.set(r.key, { artifact: r.artifact, index: r.index });
        toAppend.push(batch.subarray(r.off, r.off + RECORD_SIZE));
        continue;
      }
      if (first.index === r.index) continue; // replayed entry
      if (first.artifact !== r.artifact) conflicts.push({ firstIndex: first.index, index: r.index });
    }
    if (toAppend.length === 0) return;
    if (have + toAppend.length > this.capacity) this.grow(have + toAppend.length);
    const out = Buffer.concat(toAppend);
    writeSync(this.fd, out, 0, out.length, this.regionOffset(bucket) + have * RECORD_SIZE);
    this.counts[bucket] = have + toAppend.length;
    const c = Buffer.alloc(4);
    c.writeUInt32BE(this.counts[bucket]!);
    writeSync(this.fd, c, 0, 4, 16 + 4 * bucket);
  }

  /** Closes the file. */
  close(): void {
    closeSync(this.fd);
  }

  /** Deletes the index (audit uses a throw-away one). */
  destroy(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
