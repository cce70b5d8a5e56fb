/**
 * Which checkpoint the log publishes, and with which cosignatures. With a witness quorum of 0 (the default) the newest
 * checkpoint is published at once and cosignatures are added as they arrive; with a quorum k > 0 the published
 * checkpoint is the newest one that at least k configured witnesses have cosigned.
 */
import { fail } from '../core/errors.ts';
import type { LogStore } from '../log-store/store.ts';

export interface PublishedNote {
  treeSize: number;
  /** The signed note: the log's signature followed by every cosignature collected for this size. */
  note: string;
}

export class CheckpointView {
  private readonly store: LogStore;
  readonly quorum: number;

  constructor(store: LogStore, quorum = 0) {
    this.store = store;
    this.quorum = quorum;
  }

  /** The note of exactly this size with its cosignatures; 'not_found' if the log never signed that size. */
  noteAt(treeSize: number): string {
    const note = this.store.checkpoint(treeSize);
    if (note === undefined) fail('not_found', `the log never signed a checkpoint of size ${treeSize}`);
    const cosigs = this.store.cosignatureLines(treeSize);
    return cosigs.length === 0 ? note : note + cosigs.map((l) => l + '\n').join('');
  }

  /** The published checkpoint. */
  latest(): PublishedNote {
    const current = this.store.treeState()!.treeSize;
    if (this.quorum === 0) return { treeSize: current, note: this.noteAt(current) };
    const ok = this.store.cosignedSizes(0).find((s) => s.count >= this.quorum);
    const treeSize = ok?.treeSize ?? 0;
    return { treeSize, note: this.noteAt(treeSize) };
  }

  /** The checkpoint a submission reply carries: the one that first included the entry, as cosigned so far. */
  noteForReply(treeSize: number): PublishedNote {
    return { treeSize, note: this.noteAt(treeSize) };
  }
}
