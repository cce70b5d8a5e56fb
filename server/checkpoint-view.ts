/**
 * Which checkpoint the log publishes, and with which cosignatures.
 *
 * - Quorum 0 (the default): the newest checkpoint is published at once; cosignatures are added as they arrive.
 * - Quorum k > 0: the published checkpoint is the newest one that at least k of the CONFIGURED witnesses cosigned
 *   (cosignatures by other keys do not count). It never goes back: the published size is kept in the store's meta
 *   table (`published_size`) and only ever raised, so a restart publishes the same checkpoint (or a newer one found
 *   among the newest cosigned sizes, e.g. after a crash between storing a cosignature and raising the mark).
 *   A submission reply for entry i waits up to `waitMs` for a published checkpoint that contains it (size > i) and
 *   proves the entry against that checkpoint; if none is published in time the reply is a 503 'overloaded' that says
 *   the entry IS committed (resubmitting it is idempotent and returns its proof once a quorum cosigned).
 * - Several front ends on one database (PostgreSQL): the mark is raised atomically (store.raiseMeta: it never goes
 *   back, whoever writes it), and a front end that does not sequence learns of it by refresh() (its follow-up poll,
 *   server/shared-sequencer.ts): it publishes the marked size once that size has the quorum by ITS configured
 *   witnesses and is within its own high-water mark, so it serves the same cosigned checkpoint, never one without
 *   the quorum.
 * Nothing here grows with the log: start-up reads one meta row and at most 64 cosigned sizes.
 */
import { decodeBase64 } from '../core/encoding.ts';
import { fail, PkglogError } from '../core/errors.ts';
import { parseVerifierKey } from '../core/note.ts';
import type { Store } from '../log-store/types.ts';
import { LRUCache } from 'lru-cache';
import { realTimers, type Timers } from './witnessing.ts';

export interface PublishedNote {
  treeSize: number;
  /** The signed note: the log's signature followed by every cosignature collected for this size. */
  note: string;
  /** False when a quorum was required but not reached (GET /v1/entries/<i>/proof for an entry not yet published). */
  cosigned: boolean;
}

interface Waiter {
  minSize: number;
  index: number | undefined;
  resolve: (n: PublishedNote) => void;
  reject: (e: Error) => void;
  timer: unknown;
}

export const PUBLISHED_SIZE_META = 'published_size';

/** `<key name> <hex key ID>` of a signature line `— name base64(keyId ‖ …)`, or undefined if it is not one. */
function signerOf(line: string): string | undefined {
  const m = /^— (\S+) (\S+)$/.exec(line.replace(/\n$/, ''));
  if (m === null) return undefined;
  try {
    const sig = decodeBase64(m[2]!, 'signature');
    return sig.length >= 4 ? `${m[1]} ${sig.subarray(0, 4).toString('hex')}` : undefined;
  } catch {
    return undefined;
  }
}

export class CheckpointView {
  private readonly store: Store;
  readonly quorum: number;
  private readonly waitMs: number;
  private readonly timers: Timers;
  /** Configured witnesses' cosigner identities (`name hexKeyId`) → which witness; null: count every stored cosignature. */
  private readonly witnessKeys: Map<string, number> | null;
  private waiters: Waiter[] = [];
  /** Notes by size; signed checkpoints never change, only cosignatures are added (cosignaturesChanged clears it). */
  private readonly notes = new LRUCache<number, string>({ max: 64 });
  /** Counts cosignaturesChanged calls: a note read across one is not cached. */
  private generation = 0;
  /** With a quorum: the published size (never decreases). */
  private published = 0;
  /**
   * The newest size the log made public (its high-water mark, server/safety.ts): nothing newer is ever served, so a
   * batch whose mark could not be written (e.g. a full disk) stays unpublished until the mark is written.
   */
  private publishedLimit: () => number = () => Number.MAX_SAFE_INTEGER;

  /**
   * `witnessVkeys`: the configured witnesses' cosigner keys, one entry per witness (a vkey, or all its vkeys: an
   * Ed25519 and an ML-DSA-44 one count as one witness); only their cosignatures count toward the quorum (empty:
   * every stored cosignature counts).
   */
  private constructor(store: Store, quorum: number, waitMs: number, witnessVkeys: ReadonlyArray<string | readonly string[]>, timers: Timers) {
    this.store = store;
    this.quorum = quorum;
    this.waitMs = waitMs;
    this.timers = timers;
    this.witnessKeys = witnessVkeys.length === 0 ? null : new Map(witnessVkeys.flatMap((w, i) => (typeof w === 'string' ? [w] : w).map((v) => {
      const k = parseVerifierKey(v);
      return [`${k.name} ${k.keyId.toString('hex')}`, i] as const;
    })));
  }

  /** Opens the view (with a quorum: recovers the published size from the store, bounded work). */
  static async open(store: Store, quorum = 0, waitMs = 10_000, witnessVkeys: ReadonlyArray<string | readonly string[]> = [], timers: Timers = realTimers): Promise<CheckpointView> {
    const v = new CheckpointView(store, quorum, waitMs, witnessVkeys, timers);
    if (quorum > 0) v.published = await v.recoverPublished();
    return v;
  }

  /** Bounds what is served by the log's high-water mark (the newest checkpoint it made public). */
  limitTo(publishedLimit: () => number): void {
    this.publishedLimit = publishedLimit;
  }

  /** The newest signed size that may be served: the tree's size, bounded by the high-water mark. */
  private async newestPublic(): Promise<number> {
    return Math.min((await this.store.treeState())!.treeSize, this.publishedLimit());
  }

  /** The published size from the meta mark, raised to the newest stored size that has a quorum (bounded scan). */
  private async recoverPublished(): Promise<number> {
    const mark = await this.store.getMeta(PUBLISHED_SIZE_META);
    let published = 0;
    if (mark !== undefined && /^(0|[1-9][0-9]{0,15})$/.test(mark) && (await this.store.checkpoint(Number(mark))) !== undefined) published = Number(mark);
    for (const s of await this.store.cosignedSizes(published + 1)) {
      if ((await this.cosignerCount(s.treeSize)) < this.quorum) continue;
      published = s.treeSize;
      await this.store.raiseMeta(PUBLISHED_SIZE_META, published);
      break;
    }
    return published;
  }

  /** How many configured witnesses cosigned the checkpoint of this size (distinct witnesses; distinct keys without a list). */
  async cosignerCount(treeSize: number): Promise<number> {
    const who = new Set<string | number>();
    for (const line of await this.store.cosignatureLines(treeSize)) {
      const k = signerOf(line);
      if (k === undefined) continue;
      if (this.witnessKeys === null) who.add(k);
      else if (this.witnessKeys.has(k)) who.add(this.witnessKeys.get(k)!);
    }
    return who.size;
  }

  /** With a quorum: the published size (0 before any quorum formed). */
  async publishedSize(): Promise<number> {
    return this.quorum === 0 ? await this.newestPublic() : this.published;
  }

  /** The note of exactly this size with its cosignatures; 'not_found' if the log never signed that size. */
  async noteAt(treeSize: number): Promise<string> {
    const hit = this.notes.get(treeSize);
    if (hit !== undefined) return hit;
    const generation = this.generation;
    const note = await this.store.checkpoint(treeSize);
    if (note === undefined) fail('not_found', `the log never signed a checkpoint of size ${treeSize}`);
    const cosigs = await this.store.cosignatureLines(treeSize);
    const full = cosigs.length === 0 ? note : note + cosigs.map((l) => l + '\n').join('');
    // Cosignatures that arrived while this was read cleared the cache: then this (maybe older) note is not cached.
    if (generation === this.generation) this.notes.set(treeSize, full);
    return full;
  }

  /** The published checkpoint. */
  async latest(): Promise<PublishedNote> {
    const treeSize = await this.publishedSize();
    return { treeSize, note: await this.noteAt(treeSize), cosigned: true };
  }

  /**
   * The checkpoint to prove an already logged entry against (GET /v1/entries/<i>/proof). With a quorum: the published
   * one if it contains the entry, else the newest (marked not cosigned). Without: the newest cosigned one that
   * contains the entry, else the newest.
   */
  async forEntry(index: number): Promise<PublishedNote> {
    const current = await this.newestPublic();
    if (index >= current) fail('not_found', `entry ${index} is not in a published checkpoint yet; retry shortly`);
    if (this.quorum > 0) {
      if (this.published > index) return this.latest();
      return { treeSize: current, note: await this.noteAt(current), cosigned: false };
    }
    const cosigned = (await this.store.cosignedSizes(index + 1))[0];
    if (cosigned !== undefined) return { treeSize: cosigned.treeSize, note: await this.noteAt(cosigned.treeSize), cosigned: true };
    return { treeSize: current, note: await this.noteAt(current), cosigned: true };
  }

  /**
   * The checkpoint a submission reply carries for entry `index` (first included at `treeSize`): without a quorum that
   * checkpoint, at once; with one, the published checkpoint as soon as it contains the entry. Rejects with 503
   * 'overloaded' (saying the entry is committed) if no such checkpoint is published within the wait.
   */
  async forReply(treeSize: number, index?: number): Promise<PublishedNote> {
    if (this.quorum === 0) {
      const pub = Math.min(treeSize, this.publishedLimit());
      if (pub >= treeSize) return { treeSize, note: await this.noteAt(treeSize), cosigned: true };
      if (index !== undefined && pub > index) return { treeSize: pub, note: await this.noteAt(pub), cosigned: true };
      fail('overloaded', `entry ${index ?? treeSize - 1} is committed, but the checkpoint that includes it is not published yet ` +
        `(its high-water mark could not be written); retry shortly (resubmitting is idempotent)`);
    }
    const minSize = index === undefined ? treeSize : index + 1;
    if (this.published >= minSize) return this.latest();
    return new Promise<PublishedNote>((resolve, reject) => {
      const w: Waiter = {
        minSize,
        index,
        resolve,
        reject,
        timer: this.timers.setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(this.notCosigned(w, `within ${this.waitMs} ms`));
        }, this.waitMs),
      };
      this.waiters.push(w);
    });
  }

  private notCosigned(w: Waiter, when: string): PkglogError {
    const what = w.index === undefined ? `at tree size ${w.minSize}` : `as entry ${w.index}`;
    return new PkglogError(
      'overloaded',
      `committed ${what} but not yet cosigned by a quorum of ${this.quorum} witnesses ${when}; retry later ` +
        '(resubmitting the same entry is idempotent and returns its proof once a quorum has cosigned)',
      { committed: true, ...(w.index === undefined ? {} : { index: w.index }), treeSize: w.minSize },
    );
  }

  /**
   * Called after cosignatures for `treeSize` were stored: publishes that checkpoint if it now has a quorum and is
   * newer than the published one, and answers the replies it covers.
   */
  async cosignaturesChanged(treeSize?: number): Promise<void> {
    this.notes.clear();
    this.generation++;
    if (this.quorum === 0 || treeSize === undefined || treeSize <= this.published) return;
    if ((await this.cosignerCount(treeSize)) < this.quorum) return;
    if (treeSize <= this.published) return; // raised meanwhile
    // First durable, then visible. The mark only rises, whichever front end writes it (several on one database).
    await this.store.raiseMeta(PUBLISHED_SIZE_META, treeSize);
    await this.raise(treeSize);
  }

  /**
   * Another process stored cosignatures or raised the published mark (several front ends on one database): drops
   * the cached notes and, with a quorum, raises the published size to the store's mark once that size has the quorum
   * here too and is within what this front end made public (its high-water mark). Bounded: one meta row, one
   * checkpoint's cosignature lines. Resolves to true when the published size rose.
   */
  async refresh(): Promise<boolean> {
    this.notes.clear();
    this.generation++;
    if (this.quorum === 0) return false;
    const mark = await this.store.getMeta(PUBLISHED_SIZE_META);
    if (mark === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(mark)) return false;
    const size = Number(mark);
    if (size <= this.published || size > (await this.newestPublic())) return false;
    if ((await this.store.checkpoint(size)) === undefined || (await this.cosignerCount(size)) < this.quorum) return false;
    await this.raise(size);
    return true;
  }

  /** Makes `treeSize` (which has the quorum, durably marked) the published size and answers the replies it covers. */
  private async raise(treeSize: number): Promise<void> {
    if (treeSize <= this.published) return;
    this.published = treeSize;
    const ready = this.waiters.filter((w) => w.minSize <= treeSize);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.minSize > treeSize);
    const published = await this.latest();
    for (const w of ready) {
      this.timers.clearTimeout(w.timer);
      w.resolve(published);
    }
  }

  /** Answers every waiting reply now (shutdown): 503, the entries are committed. */
  close(): void {
    for (const w of this.waiters) {
      this.timers.clearTimeout(w.timer);
      w.reject(this.notCosigned(w, 'before the log shut down'));
    }
    this.waiters = [];
  }
}
