/**
 * Keeping the newest verified checkpoint per log (golang.org/x/mod/sumdb/client style): a new checkpoint must be
 * consistent with the saved one, proven with a consistency proof from the log; the saved one only moves forward.
 */
import { verifyConsistency } from '../core/merkle.ts';
import { EMPTY_ROOT } from '../core/hash.ts';
import { fail, isPkglogError } from '../core/errors.ts';
import type { Hash } from '../core/types.ts';
import type { Checkpoint } from '../core/checkpoint.ts';
import type { LogClient } from './http.ts';
import type { StateStore } from './state.ts';
import { differentSizeFork, sameSizeFork, type ForkFinding } from './fork.ts';

export type ConsistencyResult =
  | { status: 'first-use'; message: string }
  | { status: 'same'; message: string }
  | { status: 'advanced'; message: string; from: number }
  | { status: 'older'; message: string; saved: number }
  | { status: 'unchecked'; message: string; saved: number }
  | { status: 'fork'; message: string; fork: ForkFinding };

interface Signed {
  signed: string;
  checkpoint: Checkpoint;
}

/**
 * Proves `older` (size m) is a prefix of `newer` (size n ≥ m) with the log's consistency proof.
 * Returns undefined when consistent, else the fork finding.
 */
export async function proveConsistent(older: Signed, newer: Signed, log: LogClient | undefined): Promise<ForkFinding | undefined> {
  const m = older.checkpoint.treeSize;
  const n = newer.checkpoint.treeSize;
  if (m === n) return older.checkpoint.rootHash.equals(newer.checkpoint.rootHash) ? undefined : sameSizeFork(older, newer);
  if (m === 0) {
    if (older.checkpoint.rootHash.equals(EMPTY_ROOT)) return undefined;
    return { origin: older.checkpoint.origin, message: 'the log signed a size-0 checkpoint whose root is not the empty-tree hash' };
  }
  if (log === undefined) throw new Error('proveConsistent: a log is needed for different sizes');
  const proof: Hash[] = await log.consistencyProof(m, n, newer.checkpoint.rootHash);
  try {
    verifyConsistency(m, n, older.checkpoint.rootHash, newer.checkpoint.rootHash, proof);
    return undefined;
  } catch (e) {
    if (!isPkglogError(e, 'invalid_proof')) throw e;
  }
  return differentSizeFork(older, newer, proof, log);
}

/** How often the check is redone when other processes keep advancing the saved checkpoint meanwhile. */
const MAX_ATTEMPTS = 16;

/**
 * Checks a freshly verified checkpoint against the saved one and saves it when it is newer and proven consistent.
 * Without a log (offline), only equal sizes can be compared; other cases are reported as 'unchecked'.
 * The save is a compare-and-swap: if another run (another process) saved a checkpoint after we read ours, the
 * check is redone against that one, so concurrent runs never move the state backwards and a fork between what two
 * runs saw is still found.
 */
export async function checkAgainstSaved(store: StateStore, current: Signed, log: LogClient | undefined): Promise<ConsistencyResult> {
  const origin = current.checkpoint.origin;
  const size = current.checkpoint.treeSize;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const saved = store.latest(origin);
    if (saved === undefined) {
      if (!store.compareAndSwap(undefined, current.signed).swapped) continue;
      return { status: 'first-use', message: `first checkpoint seen for ${origin} (size ${size}); saved as the trusted state` };
    }
    const savedSize = saved.checkpoint.treeSize;
    if (savedSize === size) {
      const fork = await proveConsistent(saved, current, log);
      if (fork) return { status: 'fork', message: fork.message, fork };
      return { status: 'same', message: `checkpoint size ${size} matches the saved checkpoint` };
    }
    if (log === undefined) {
      return {
        status: 'unchecked',
        saved: savedSize,
        message: `consistency with the saved checkpoint (size ${savedSize}) not checked: no log URL to fetch a proof (offline)`,
      };
    }
    if (size > savedSize) {
      const fork = await proveConsistent(saved, current, log);
      if (fork) return { status: 'fork', message: fork.message, fork };
      if (!store.compareAndSwap(saved.signed, current.signed).swapped) continue;
      return { status: 'advanced', from: savedSize, message: `checkpoint size ${size} is consistent with the saved size ${savedSize}; state advanced` };
    }
    const fork = await proveConsistent(current, saved, log);
    if (fork) return { status: 'fork', message: fork.message, fork };
    return { status: 'older', saved: savedSize, message: `checkpoint size ${size} is a prefix of the saved size ${savedSize} (state kept)` };
  }
  return fail('overloaded', `the saved checkpoint of ${origin} kept changing while it was checked (${MAX_ATTEMPTS} attempts); try again`);
}
