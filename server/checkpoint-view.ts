/**
 * Which checkpoint the log publishes, and with which cosignatures. With a witness quorum of 0 (the default) the newest
 * checkpoint is published at once and cosignatures are added as they arrive; with a quorum k > 0 the published
 * checkpoint is the newest one that at least k configured witnesses have cosigned, and submission replies wait (up to a
 * timeout) for a published checkpoint that includes their entry.
 */
import { fail } from '../core/errors.ts';
import type { LogStore } from '../log-store/store.ts';

export interface PublishedNote {
  treeSize: number;
  /** The signed note: the log's signature followed by every cosignature collected for this size. */
  note: string;
  /** False when a quorum was required but not reached in time (the note then carries what it has). */
  cosigned: boolean;
}

interface Waiter {
  minSize: number;
  resolve: (n: PublishedNote) => void;
  timer: NodeJS.Timeout;
}

export class CheckpointView {
  private readonly store: LogStore;
  readonly quorum: number;
  private readonly waitMs: number;
  private waiters: Waiter[] = [];
  /** Notes by size; signed checkpoints never change, only cosignatures are added (cosignaturesChanged clears it). */
  private readonly notes = new Map<number, string>();

  constructor(store: LogStore, quorum = 0, waitMs = 10_000) {
    this.store = store;
    this.quorum = quorum;
    this.waitMs = waitMs;
  }

  /** The note of exactly this size with its cosignatures; 'not_found' if the log never signed that size. */
  noteAt(treeSize: number): string {
    const hit = this.notes.get(treeSize);
    if (hit !== undefined) return hit;
    const note = this.store.checkpoint(treeSize);
    if (note === undefined) fail('not_found', `the log never signed a checkpoint of size ${treeSize}`);
    const cosigs = this.store.cosignatureLines(treeSize);
    const full = cosigs.length === 0 ? note : note + cosigs.map((l) => l + '\n').join('');
    if (this.notes.size >= 64) this.notes.delete(this.notes.keys().next().value!);
    this.notes.set(treeSize, full);
    return full;
  }

  /** The published checkpoint. */
  latest(): PublishedNote {
    const current = this.store.treeState()!.treeSize;
    if (this.quorum === 0) return { treeSize: current, note: this.noteAt(current), cosigned: true };
    const ok = this.store.cosignedSizes(0).find((s) => s.count >= this.quorum);
    const treeSize = ok?.treeSize ?? 0;
    return { treeSize, note: this.noteAt(treeSize), cosigned: true };
  }

  /**
   * The checkpoint to prove an already logged entry against (GET /v1/entries/<i>/proof): the newest one that witnesses
   * cosigned and that contains the entry, else the published one, else (with a quorum not yet met for it) the newest.
   */
  forEntry(index: number): PublishedNote {
    const cosigned = this.store.cosignedSizes(index + 1).find((s) => s.count >= Math.max(1, this.quorum));
    if (cosigned !== undefined) return { treeSize: cosigned.treeSize, note: this.noteAt(cosigned.treeSize), cosigned: true };
    const published = this.latest();
    if (published.treeSize > index) return published;
    const current = this.store.treeState()!.treeSize;
    return { treeSize: current, note: this.noteAt(current), cosigned: false };
  }

  /**
   * The checkpoint a submission reply carries for an entry first included at `treeSize`: at once without a quorum;
   * otherwise the first published checkpoint at least that large, or after the timeout the log-signed one of that size.
   */
  forReply(treeSize: number): PublishedNote | Promise<PublishedNote> {
    if (this.quorum === 0) return { treeSize, note: this.noteAt(treeSize), cosigned: true };
    const published = this.latest();
    if (published.treeSize >= treeSize) return published;
    return new Promise((resolve) => {
      const w: Waiter = {
        minSize: treeSize,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve({ treeSize, note: this.noteAt(treeSize), cosigned: false });
        }, this.waitMs),
      };
      this.waiters.push(w);
    });
  }

  /** Called after cosignatures are stored: answers the replies that a newly published checkpoint covers. */
  cosignaturesChanged(): void {
    this.notes.clear();
    if (this.waiters.length === 0) return;
    const published = this.latest();
    const ready = this.waiters.filter((w) => w.minSize <= published.treeSize);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.minSize > published.treeSize);
    for (const w of ready) {
      clearTimeout(w.timer);
      w.resolve(published);
    }
  }

  /** Answers every waiting reply now (shutdown). */
  close(): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve({ treeSize: w.minSize, note: this.noteAt(w.minSize), cosigned: false });
    }
    this.waiters = [];
  }
}
