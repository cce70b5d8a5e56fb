/**
 * The log's readiness (GET /readyz): every check is in-memory state or one indexed read, so a load balancer may poll it
 * often. Ready means
 *   store      the store (SQLite or PostgreSQL) is open and answers (its tree row reads);
 *   signing    the signing guard allows signing (the start-up witness check passed, the log has not stopped signing);
 *   sequencer  the sequencer runs (not closed) and integrates: no submission has waited longer than `stallMs`;
 *   cosigned   with a witness quorum only: the published (quorum-cosigned) checkpoint is the newest one, or the newest
 *              one has been waiting for its cosignatures less than `cosignWaitMs`.
 * docs/operations.md, "Health".
 */
import { performance } from 'node:perf_hooks';
import type { ReadyCheck } from '../runtime/http-ops.ts';
import type { Store } from '../log-store/types.ts';
import type { CheckpointView } from './checkpoint-view.ts';
import type { SigningGuard } from './safety.ts';
import type { Sequencer } from './sequencer.ts';

export interface LogHealthDeps {
  store: Store;
  guard: SigningGuard;
  sequencer: Pick<Sequencer, 'oldestPendingMs' | 'running'>;
  checkpoints: CheckpointView;
  /** A submission waiting longer than this means integration is stuck. */
  stallMs: number;
  /** With a quorum: how long the newest checkpoint may wait for its cosignatures. */
  cosignWaitMs: number;
}

/** Commit times of the newest sizes (bounded): when did the first size beyond the published one appear? */
const RECENT = 64;

export class LogHealth {
  private readonly d: LogHealthDeps;
  private readonly commits: Array<{ treeSize: number; at: number }> = [];
  private readonly startedAt = performance.now();

  constructor(deps: LogHealthDeps) {
    this.d = deps;
  }

  /** A batch committed a new size (the sequencer's onCheckpoint). */
  committed(treeSize: number): void {
    this.commits.push({ treeSize, at: performance.now() });
    if (this.commits.length > RECENT) this.commits.shift();
  }

  async checks(): Promise<ReadyCheck[]> {
    const { store, guard, sequencer, checkpoints } = this.d;
    const out: ReadyCheck[] = [];
    let treeSize: number | undefined;
    try {
      if (store.isOpen) treeSize = (await store.treeState())?.treeSize;
      out.push(treeSize === undefined ? { name: 'store', ok: false, detail: 'the store is not open' } : { name: 'store', ok: true });
    } catch (e) {
      out.push({ name: 'store', ok: false, detail: `the store does not answer: ${(e as Error).message}` });
    }
    const stopped = guard.stoppedReason;
    const waiting = guard.waitingReason;
    out.push(stopped !== undefined ? { name: 'signing', ok: false, detail: `stopped signing: ${stopped}` }
      : waiting !== undefined ? { name: 'signing', ok: false, detail: `not signing yet: waiting for ${waiting}` }
        : { name: 'signing', ok: true });
    const oldest = sequencer.oldestPendingMs();
    out.push(!sequencer.running ? { name: 'sequencer', ok: false, detail: 'the sequencer is closed' }
      : oldest > this.d.stallMs ? { name: 'sequencer', ok: false, detail: `a submission has waited ${Math.round(oldest)} ms to be integrated (limit ${this.d.stallMs} ms)` }
        : { name: 'sequencer', ok: true });
    if (checkpoints.quorum > 0 && treeSize !== undefined) {
      const published = await checkpoints.publishedSize();
      if (published >= treeSize) {
        out.push({ name: 'cosigned', ok: true });
      } else {
        // Since when has the first size beyond the published one waited? (Committed before this process started, or
        // before the bounded record of commits: since the oldest time known, which only understates the wait.)
        const first = this.commits.find((c) => c.treeSize > published);
        const age = performance.now() - (first?.at ?? this.startedAt);
        out.push(age <= this.d.cosignWaitMs ? { name: 'cosigned', ok: true }
          : { name: 'cosigned', ok: false, detail: `the published checkpoint (size ${published}) lags the newest one (size ${treeSize}) for ${Math.round(age)} ms: the witness quorum of ${checkpoints.quorum} has not cosigned (limit ${this.d.cosignWaitMs} ms)` });
      }
    }
    return out;
  }
}
