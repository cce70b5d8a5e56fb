/** C2SP tlog-checkpoint body: origin, tree size, root hash, optional extension lines. */
import type { Hash } from './types.ts';
import { fail } from './errors.ts';

export interface Checkpoint {
  origin: string;
  treeSize: number;
  rootHash: Hash;
  extensions: string[];
}

/** Strict parse of a checkpoint body (the note text, ending in "\n"). Throws 'malformed'. */
export function parseCheckpoint(text: string): Checkpoint {
  void text;
  return fail('internal', 'not implemented');
}

export function formatCheckpoint(checkpoint: Checkpoint): string {
  void checkpoint;
  return fail('internal', 'not implemented');
}
